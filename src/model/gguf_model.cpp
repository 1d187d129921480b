// open_model_folder for a GGUF file: the model config from the qwen2.* /
// llama.* keys, the tokenizer from tokenizer.ggml.*, the chat template from
// tokenizer.chat_template, the weights from the tensors. The config and the
// tokenizer are written as the config.json / tokenizer.json a Hugging Face
// folder of the same model holds, and go through the same parsers and
// checks as a folder's.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/gguf_blocks.h"
#include "model/model_folder.h"
#include "tokenizer/bpe_tokenizer_json.h"

namespace r1 {

namespace {

using nlohmann::json;

// tokenizer.ggml.token_type values.
constexpr int64_t kTypeControl = 3;
constexpr int64_t kTypeUserDefined = 4;

// The pre-tokenizer each tokenizer.ggml.pre name r1serve reads stands for
// (llama.cpp maps "deepseek-r1-qwen" to Qwen2's, model-facts.md §4.2).
Result<PreTokenizerKind> pre_tokenizer_for(const std::string& pre, const std::string& path) {
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreTokenizerKind::kQwen2;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return PreTokenizerKind::kLlama3;
  if (pre == "smollm") return PreTokenizerKind::kSmolLM;
  return unimplemented(path + ": tokenizer.ggml.pre \"" + pre +
                       "\" is not supported (qwen2, deepseek-r1-qwen, llama-bpe / llama3 / "
                       "llama-v3 and smollm are)");
}

Result<const GgufValue*> string_array(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return not_found(f.path() + ": metadata " + std::string(key) + " is missing");
  if (v->type != GgufValue::Type::kArray || v->item_type != GgufValue::Type::kString) {
    return invalid_argument(f.path() + ": metadata " + std::string(key) +
                            " is not an array of strings");
  }
  return v;
}

// The padding entries llama.cpp adds up to the embedding's row count
// ("[PAD151665]", ...): not tokens; their logits are masked as padding.
bool is_padding_token(const std::string& text, size_t id) {
  return text == "[PAD" + std::to_string(id) + "]";
}

struct TokenizerFiles {
  std::string tokenizer_json;
  std::string config_json;
};

Result<TokenizerFiles> tokenizer_files(const GgufFile& f) {
  const std::string& path = f.path();
  R1_ASSIGN_OR_RETURN(std::string model, f.get_string("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return unimplemented(path + ": tokenizer.ggml.model \"" + model +
                         "\" is not supported (only \"gpt2\", byte-level BPE)");
  }
  if (f.find("tokenizer.ggml.pre") == nullptr) {
    return unimplemented(path +
                         ": the file has no tokenizer.ggml.pre, so its pre-tokenizer is "
                         "unknown (qwen2, deepseek-r1-qwen, llama-bpe and smollm are read)");
  }
  R1_ASSIGN_OR_RETURN(std::string pre, f.get_string("tokenizer.ggml.pre"));
  R1_ASSIGN_OR_RETURN(PreTokenizerKind kind, pre_tokenizer_for(pre, path));
  R1_ASSIGN_OR_RETURN(const GgufValue* tokens, string_array(f, "tokenizer.ggml.tokens"));
  R1_ASSIGN_OR_RETURN(const GgufValue* merges, string_array(f, "tokenizer.ggml.merges"));
  const GgufValue* types = f.find("tokenizer.ggml.token_type");
  if (types != nullptr &&
      (types->type != GgufValue::Type::kArray || types->items.size() != tokens->items.size())) {
    return invalid_argument(path +
                            ": tokenizer.ggml.token_type is not an array as long as "
                            "tokenizer.ggml.tokens");
  }
  size_t n = tokens->items.size();
  while (n > 0 && is_padding_token(tokens->items[n - 1].s, n - 1)) --n;
  if (n == 0) return invalid_argument(path + ": tokenizer.ggml.tokens is empty");

  json vocab = json::object();
  json added = json::array();
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = tokens->items[id].s;
    if (text.empty()) return invalid_argument(path + ": token " + std::to_string(id) + " is empty");
    const int64_t type = types != nullptr ? types->items[id].as_int().value_or(1) : 1;
    if (type == kTypeControl || type == kTypeUserDefined) {
      added.push_back(added_token_json(static_cast<int32_t>(id), text, type == kTypeControl,
                                       type == kTypeUserDefined));
    } else if (!vocab.emplace(text, id).second) {
      return invalid_argument(path + ": token \"" + text + "\" appears twice in the vocabulary");
    }
  }
  json merge_list = json::array();
  for (const GgufValue& m : merges->items) merge_list.push_back(m.s);

  json config = json::object();
  auto token_key = [&](const char* key, const char* name) -> Status {
    const GgufValue* v = f.find(key);
    if (v == nullptr) return ok_status();
    const std::optional<int64_t> id = v->as_int();
    if (!id || *id < 0 || static_cast<size_t>(*id) >= n) {
      return invalid_argument(path + ": " + key + " is not a token id below " + std::to_string(n));
    }
    config[name] = tokens->items[static_cast<size_t>(*id)].s;
    return ok_status();
  };
  R1_RETURN_IF_ERROR(token_key("tokenizer.ggml.bos_token_id", "bos_token"));
  R1_RETURN_IF_ERROR(token_key("tokenizer.ggml.eos_token_id", "eos_token"));
  // Absent flags: llama.cpp adds BOS by default for Llama-3's vocabulary.
  const bool default_bos = kind == PreTokenizerKind::kLlama3;
  for (const auto& [key, name, fallback] :
       {std::tuple{"tokenizer.ggml.add_bos_token", "add_bos_token", default_bos},
        std::tuple{"tokenizer.ggml.add_eos_token", "add_eos_token", false}}) {
    const GgufValue* v = f.find(key);
    config[name] = v == nullptr ? fallback : v->type == GgufValue::Type::kBool && v->u != 0;
  }
  if (f.find("tokenizer.chat_template") != nullptr) {
    R1_ASSIGN_OR_RETURN(std::string tmpl, f.get_string("tokenizer.chat_template"));
    config["chat_template"] = std::move(tmpl);
  }
  return TokenizerFiles{
      bpe_tokenizer_json(kind, std::move(vocab), std::move(merge_list), std::move(added)),
      config.dump()};
}

// Llama-3.1's RoPE scaling from llama.cpp's rope_freqs.weight (the divisor
// of each frequency): the parameters whose divisors match it. The R1 Llama
// distills use factor 8, low 1, high 4, original 8192 (model-facts.md §1).
Result<RopeScaling> llama3_rope_scaling(const GgufTensor& t, const ModelConfig& c,
                                        const std::string& path) {
  const int64_t n = c.head_dim / 2;
  if (c.arch != Arch::kLlama || t.n_elements() != n) {
    return unimplemented(path + ": rope_freqs.weight has " + std::to_string(t.n_elements()) +
                         " values; only Llama-3.1's scaling of a llama model's " +
                         std::to_string(n) + " frequencies is read");
  }
  std::vector<float> divisors(static_cast<size_t>(n));
  dequantize_gguf(t.type, t.data, n, divisors.data());
  RopeScaling rs;
  rs.type = RopeScaling::Type::kLlama3;
  rs.factor = divisors.back();
  rs.low_freq_factor = 1.0;
  rs.high_freq_factor = 4.0;
  rs.original_max_position_embeddings = 8192;
  const double original = static_cast<double>(rs.original_max_position_embeddings);
  const double low_wavelen = original / rs.low_freq_factor;
  const double high_wavelen = original / rs.high_freq_factor;
  for (int64_t i = 0; i < n; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, 2.0 * static_cast<double>(i) /
                                                         static_cast<double>(c.head_dim));
    const double wavelen = 2.0 * M_PI / freq;
    double want = 1.0;
    if (wavelen > low_wavelen) {
      want = rs.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth =
          (original / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      want = 1.0 / ((1.0 - smooth) / rs.factor + smooth);
    }
    if (!(std::fabs(want - divisors[static_cast<size_t>(i)]) <= 1e-3 * want)) {
      return unimplemented(
          path + ": rope_freqs.weight is not Llama-3.1's scaling (factor " +
          std::to_string(rs.factor) +
          ", low 1, high 4, original 8192); other RoPE scalings are not supported");
    }
  }
  return rs;
}

// The shortest decimal that reads back as `f`, as a double: the value a
// converter wrote into an f32 field (1e-6, not 9.99999997e-07).
double shortest_decimal(float f) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

// config.json for the file's architecture and hyper-parameters.
Result<std::string> config_json(const GgufModel& model) {
  const GgufFile& f = model.first();
  const std::string& path = f.path();
  R1_ASSIGN_OR_RETURN(std::string arch, f.get_string("general.architecture"));
  json c;
  if (arch == "qwen2") {
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["model_type"] = "qwen2";
  } else if (arch == "llama") {
    c["architectures"] = {"LlamaForCausalLM"};
    c["model_type"] = "llama";
  } else {
    return unimplemented(path + ": architecture \"" + arch +
                         "\" is not supported (qwen2 and llama are)");
  }
  auto int_key = [&](const std::string& suffix, const char* name) -> Status {
    R1_ASSIGN_OR_RETURN(int64_t v, f.get_int(arch + "." + suffix));
    c[name] = v;
    return ok_status();
  };
  R1_RETURN_IF_ERROR(int_key("block_count", "num_hidden_layers"));
  R1_RETURN_IF_ERROR(int_key("embedding_length", "hidden_size"));
  R1_RETURN_IF_ERROR(int_key("feed_forward_length", "intermediate_size"));
  R1_RETURN_IF_ERROR(int_key("attention.head_count", "num_attention_heads"));
  c["num_key_value_heads"] = c["num_attention_heads"];
  if (f.find(arch + ".attention.head_count_kv") != nullptr) {
    R1_RETURN_IF_ERROR(int_key("attention.head_count_kv", "num_key_value_heads"));
  }
  if (f.find(arch + ".context_length") != nullptr) {
    R1_RETURN_IF_ERROR(int_key("context_length", "max_position_embeddings"));
  }
  if (f.find(arch + ".attention.key_length") != nullptr) {
    R1_RETURN_IF_ERROR(int_key("attention.key_length", "head_dim"));
  }
  double theta = 10000.0;
  if (f.find(arch + ".rope.freq_base") != nullptr) {
    R1_ASSIGN_OR_RETURN(theta, f.get_double(arch + ".rope.freq_base"));
  }
  c["rope_theta"] = theta;
  R1_ASSIGN_OR_RETURN(double eps, f.get_double(arch + ".attention.layer_norm_rms_epsilon"));
  // Stored as f32: 1e-6 reads back as 9.99999997e-07. Round to the decimal
  // value the f32 came from, so the norm uses HF's eps exactly.
  c["rms_norm_eps"] = shortest_decimal(static_cast<float>(eps));
  // {arch}.attention.sliding_window is ignored, as llama.cpp ignores it for
  // qwen2 and llama (Qwen2's config.json carries a window it does not use).
  // RoPE scaling written as keys (YaRN, linear) is not implemented.
  if (const GgufValue* rs = f.find(arch + ".rope.scaling.type")) {
    if (rs->type != GgufValue::Type::kString || (rs->s != "none" && !rs->s.empty())) {
      return unimplemented(path + ": " + arch + ".rope.scaling.type \"" + rs->s +
                           "\" is not supported (only Llama-3.1's rope_freqs scaling is)");
    }
  }
  c["hidden_act"] = "silu";
  const GgufTensor* embed = model.find_tensor("token_embd.weight");
  if (embed == nullptr || embed->dims.size() != 2) {
    return not_found(path + ": token_embd.weight is missing or not a matrix");
  }
  c["vocab_size"] = embed->dims[1];
  c["tie_word_embeddings"] = model.find_tensor("output.weight") == nullptr;
  if (arch == "llama") c["attention_bias"] = model.find_tensor("blk.0.attn_q.bias") != nullptr;
  c["torch_dtype"] = "bfloat16";
  for (const auto& [key, name] : {std::pair{"tokenizer.ggml.bos_token_id", "bos_token_id"},
                                  std::pair{"tokenizer.ggml.eos_token_id", "eos_token_id"}}) {
    if (const GgufValue* v = f.find(key); v != nullptr && v->as_int()) c[name] = *v->as_int();
  }
  return c.dump();
}

}  // namespace

Result<Tokenizer> open_gguf_tokenizer(const std::string& path) {
  R1_ASSIGN_OR_RETURN(std::shared_ptr<GgufModel> model, GgufModel::open(path));
  R1_ASSIGN_OR_RETURN(TokenizerFiles files, tokenizer_files(model->first()));
  auto tok = Tokenizer::from_json(files.tokenizer_json, files.config_json);
  if (!tok.ok()) return tok.status().with_context(path + " (its tokenizer.ggml.* metadata)");
  return std::move(tok).value();
}

Result<ModelFolder> open_gguf_model(const std::string& path) {
  R1_ASSIGN_OR_RETURN(std::shared_ptr<GgufModel> model, GgufModel::open(path));
  R1_ASSIGN_OR_RETURN(std::string config, config_json(*model));
  ModelFolder m;
  m.dir = path;
  auto parsed = parse_model_config(config);
  if (!parsed.ok()) return parsed.status().with_context(path + " (its qwen2.* / llama.* metadata)");
  m.config = std::move(parsed).value();
  if (const GgufTensor* freqs = model->find_tensor("rope_freqs.weight")) {
    R1_ASSIGN_OR_RETURN(m.config.rope_scaling, llama3_rope_scaling(*freqs, m.config, path));
  }
  m.generation.bos_token_id = m.config.bos_token_id;
  m.generation.eos_token_ids = m.config.eos_token_ids;
  R1_ASSIGN_OR_RETURN(
      WeightFiles files,
      WeightFiles::from_gguf(model, m.config.arch == Arch::kLlama, m.config.head_dim));
  R1_ASSIGN_OR_RETURN(TokenizerFiles tok_files, tokenizer_files(model->first()));
  auto tok = Tokenizer::from_json(tok_files.tokenizer_json, tok_files.config_json);
  if (!tok.ok()) return tok.status().with_context(path + " (its tokenizer.ggml.* metadata)");
  return finish_model_folder(std::move(m), std::move(files), std::move(tok).value(),
                             path + " (tokenizer.chat_template)");
}

}  // namespace r1
