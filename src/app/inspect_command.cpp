// `r1serve inspect FILE.gguf`: what a GGUF file holds, as r1serve reads it:
// version, alignment, every metadata entry and every tensor (name, ggml dims,
// type, offset). --json prints one JSON object; --dequantize NAME --out PATH
// writes that tensor's values as little-endian f32 (ggml order), the way the
// loader dequantises it.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "format/gguf.h"
#include "format/gguf_blocks.h"

namespace r1 {

namespace {

using nlohmann::json;

// Arrays longer than this print as their length and first items only,
// unless --full.
constexpr size_t kShortArray = 16;

json value_json(const GgufValue& v, bool full) {
  using T = GgufValue::Type;
  switch (v.type) {
    case T::kU8:
    case T::kU16:
    case T::kU32:
    case T::kU64:
      return v.u;
    case T::kI8:
    case T::kI16:
    case T::kI32:
    case T::kI64:
      return v.i;
    case T::kF32:
    case T::kF64:
      if (!std::isfinite(v.f)) return std::to_string(v.f);  // JSON has no inf/nan
      return v.f;
    case T::kBool:
      return v.u != 0;
    case T::kString:
      return v.s;
    case T::kArray: {
      json a = json::array();
      const size_t n = full ? v.items.size() : std::min(v.items.size(), kShortArray);
      for (size_t k = 0; k < n; ++k) a.push_back(value_json(v.items[k], full));
      return a;
    }
  }
  return nullptr;
}

struct InspectArgs {
  std::string file;
  bool json_out = false;
  bool full = false;
  std::string dequantize;
  std::string out;
};

Status write_dequantized(const GgufModel& model, const InspectArgs& a) {
  const GgufTensor* t = model.find_tensor(a.dequantize);
  if (t == nullptr) return not_found(a.file + ": no tensor named " + a.dequantize);
  R1_RETURN_IF_ERROR(require_readable(a.file, *t));
  std::vector<float> values(static_cast<size_t>(t->n_elements()));
  dequantize_gguf(t->type, t->data, t->n_elements(), values.data());
  std::ofstream f(a.out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(values.data()),
          static_cast<std::streamsize>(values.size() * sizeof(float)));
  if (!f) return invalid_argument(a.out + ": cannot write");
  return ok_status();
}

Status run_inspect(const InspectArgs& a) {
  R1_ASSIGN_OR_RETURN(std::shared_ptr<GgufModel> model, GgufModel::open(a.file));
  if (!a.dequantize.empty()) return write_dequantized(*model, a);
  json doc;
  doc["files"] = json::array();
  for (const auto& f : model->files()) {
    const GgufHeader& h = f->header();
    json file;
    file["path"] = f->path();
    file["version"] = h.version;
    file["alignment"] = h.alignment;
    file["data_offset"] = h.data_offset;
    json meta = json::object();
    for (const auto& [key, value] : h.metadata) {
      json entry;
      entry["type"] = gguf_value_type_name(value.type);
      if (value.type == GgufValue::Type::kArray) {
        entry["item_type"] = gguf_value_type_name(value.item_type);
        entry["length"] = value.items.size();
      }
      entry["value"] = value_json(value, a.full);
      meta[key] = std::move(entry);
    }
    file["metadata"] = std::move(meta);
    json tensors = json::array();
    for (const GgufTensor& t : h.tensors) {
      tensors.push_back({{"name", t.name},
                         {"dims", t.dims},
                         {"type", ggml_type_name(t.type)},
                         {"offset", t.offset},
                         {"bytes", t.n_bytes}});
    }
    file["tensors"] = std::move(tensors);
    doc["files"].push_back(std::move(file));
  }
  if (a.json_out) {
    std::cout << doc.dump(1) << "\n";
    return ok_status();
  }
  for (const json& file : doc["files"]) {
    std::cout << file["path"].get<std::string>() << ": GGUF v" << file["version"] << ", alignment "
              << file["alignment"] << ", " << file["metadata"].size() << " metadata entries, "
              << file["tensors"].size() << " tensors\n";
    for (const auto& [key, entry] : file["metadata"].items()) {
      std::string text = entry["value"].dump();
      if (text.size() > 120) text = text.substr(0, 117) + "...";
      std::cout << "  " << key << " (" << entry["type"].get<std::string>();
      if (entry.contains("length")) std::cout << "[" << entry["length"] << "]";
      std::cout << ") = " << text << "\n";
    }
    for (const json& t : file["tensors"]) {
      std::cout << "  tensor " << t["name"].get<std::string>() << " " << t["dims"].dump() << " "
                << t["type"].get<std::string>() << "\n";
    }
  }
  return ok_status();
}

}  // namespace

void add_inspect_command(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show what a GGUF model file holds");
  cmd->add_option("file", a->file, "a .gguf file (the first of a split set)")->required();
  cmd->add_flag("--json", a->json_out, "print one JSON object");
  cmd->add_flag("--full", a->full, "print arrays whole (tokens, merges)");
  cmd->add_option("--dequantize", a->dequantize, "write this tensor's values as f32 to --out");
  cmd->add_option("--out", a->out, "file for --dequantize");
  cmd->callback([a, exit_code] {
    if (!a->dequantize.empty() && a->out.empty()) {
      *exit_code = report_error(invalid_argument("--dequantize needs --out"));
      return;
    }
    Status s = run_inspect(*a);
    if (!s.ok()) *exit_code = report_error(s);
  });
}

}  // namespace r1
