#include "format/weight_validation.h"

#include <set>

namespace r1 {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool is_float_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

}  // namespace

Status validate_weights(const ModelConfig& config, const WeightFiles& files,
                        std::vector<std::string>* unexpected) {
  std::set<std::string, std::less<>> expected_names;
  Status first;
  size_t n_problems = 0;
  auto problem = [&](Status s) {
    if (n_problems++ == 0) first = std::move(s);
  };
  for (const ExpectedTensor& e : expected_tensors(config)) {
    expected_names.insert(e.name);
    const TensorInfo* t = files.find(e.name);
    if (t == nullptr) {
      problem(not_found("tensor " + e.name + ": missing from " + files.source()));
      continue;
    }
    if (t->shape != e.shape) {
      problem(invalid_argument("tensor " + e.name + ": shape " + shape_string(e.shape) +
                               " expected, file has " + shape_string(t->shape) + " (in " + t->file +
                               ")"));
      continue;
    }
    if (!t->ggml_type && !is_float_dtype(t->dtype)) {
      problem(invalid_argument("tensor " + e.name + ": dtype " +
                               std::string(safetensors_dtype_name(t->dtype)) +
                               " is not a float type (F32, F16, BF16) (in " + t->file + ")"));
    }
  }
  if (unexpected != nullptr) {
    unexpected->clear();
    for (const auto& [name, info] : files.all()) {
      if (expected_names.count(name) == 0) unexpected->push_back(name);
    }
  }
  if (n_problems == 0) return ok_status();
  if (n_problems == 1) return first;
  return Status(first.code(), first.message() + " (and " + std::to_string(n_problems - 1) +
                                  " more problem" + (n_problems > 2 ? "s" : "") + ")");
}

}  // namespace r1
