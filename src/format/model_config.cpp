#include "format/model_config.h"

#include <sys/stat.h>
#include <cerrno>
#include <cmath>
#include <utility>

#include <nlohmann/json.hpp>

#include "format/detail/json_util.h"

namespace r1 {

namespace {

using detail::find_key;
using detail::json_int64;
using nlohmann::json;

constexpr std::string_view kSupportedArchs = "Qwen2ForCausalLM, LlamaForCausalLM";

// Typed getters over one JSON object; every message starts with `file_` and
// names the key. A null value is treated as absent, as transformers does.
class Fields {
 public:
  Fields(const json& obj, std::string file) : obj_(obj), file_(std::move(file)) {}

  Status error(std::string_view key, std::string_view what) const {
    return invalid_argument(file_ + ": \"" + std::string(key) + "\" " + std::string(what));
  }

  Result<std::optional<int64_t>> opt_int(std::string_view key) const {
    const json* v = find_key(obj_, key);
    if (v == nullptr) return std::optional<int64_t>();
    auto i = json_int64(*v);
    if (!i) return error(key, "must be an integer, got " + v->dump());
    return std::optional<int64_t>(*i);
  }

  // A required integer > 0.
  Result<int64_t> positive_int(std::string_view key) const {
    R1_ASSIGN_OR_RETURN(std::optional<int64_t> v, opt_int(key));
    if (!v) return error(key, "is missing");
    if (*v <= 0) return error(key, "must be positive, got " + std::to_string(*v));
    return *v;
  }

  Result<int64_t> positive_int_or(std::string_view key, int64_t fallback) const {
    R1_ASSIGN_OR_RETURN(std::optional<int64_t> v, opt_int(key));
    if (!v) return fallback;
    if (*v <= 0) return error(key, "must be positive, got " + std::to_string(*v));
    return *v;
  }

  Result<std::optional<double>> opt_number(std::string_view key) const {
    const json* v = find_key(obj_, key);
    if (v == nullptr) return std::optional<double>();
    if (!v->is_number()) return error(key, "must be a number, got " + v->dump());
    return std::optional<double>(v->get<double>());
  }

  Result<double> positive_number_or(std::string_view key, double fallback) const {
    R1_ASSIGN_OR_RETURN(std::optional<double> v, opt_number(key));
    if (!v) return fallback;
    if (!(*v > 0) || !std::isfinite(*v)) return error(key, "must be positive, got " + dump(key));
    return *v;
  }

  Result<std::optional<bool>> opt_bool(std::string_view key) const {
    const json* v = find_key(obj_, key);
    if (v == nullptr) return std::optional<bool>();
    if (!v->is_boolean()) return error(key, "must be true or false, got " + v->dump());
    return std::optional<bool>(v->get<bool>());
  }

  Result<std::optional<std::string>> opt_string(std::string_view key) const {
    const json* v = find_key(obj_, key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return error(key, "must be a string, got " + v->dump());
    return std::optional<std::string>(v->get<std::string>());
  }

  // An id or a list of ids (eos_token_id); empty when absent.
  Result<std::vector<int64_t>> id_list(std::string_view key) const {
    std::vector<int64_t> ids;
    const json* v = find_key(obj_, key);
    if (v == nullptr) return ids;
    if (auto i = json_int64(*v)) {
      ids.push_back(*i);
    } else if (v->is_array()) {
      for (const json& e : *v) {
        auto id = json_int64(e);
        if (!id) return error(key, "must be an integer or a list of integers, got " + v->dump());
        ids.push_back(*id);
      }
    } else {
      return error(key, "must be an integer or a list of integers, got " + v->dump());
    }
    for (int64_t id : ids) {
      if (id < 0) return error(key, "holds a negative token id " + std::to_string(id));
    }
    return ids;
  }

  std::string dump(std::string_view key) const {
    const json* v = find_key(obj_, key);
    return v == nullptr ? "null" : v->dump();
  }

 private:
  const json& obj_;
  std::string file_;
};

// architectures[0], or model_type when architectures is absent.
Result<std::pair<Arch, std::string>> parse_arch(const json& root, const Fields& f) {
  const json* archs = find_key(root, "architectures");
  if (archs != nullptr) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return f.error("architectures", "must be a non-empty list of names, got " + archs->dump());
    }
    auto name = (*archs)[0].get<std::string>();
    if (name == "Qwen2ForCausalLM") return std::make_pair(Arch::kQwen2, name);
    if (name == "LlamaForCausalLM") return std::make_pair(Arch::kLlama, name);
    return unimplemented("config.json: unknown architecture '" + name +
                         "' (supported: " + std::string(kSupportedArchs) + ")");
  }
  R1_ASSIGN_OR_RETURN(std::optional<std::string> model_type, f.opt_string("model_type"));
  if (!model_type) {
    return invalid_argument("config.json: neither \"architectures\" nor \"model_type\" is given");
  }
  if (*model_type == "qwen2") return std::make_pair(Arch::kQwen2, std::string("Qwen2ForCausalLM"));
  if (*model_type == "llama") return std::make_pair(Arch::kLlama, std::string("LlamaForCausalLM"));
  return unimplemented("config.json: unknown model_type '" + *model_type +
                       "' (supported: qwen2, llama)");
}

Result<RopeScaling> parse_rope_scaling(const json& root) {
  RopeScaling rs;
  const json* v = find_key(root, "rope_scaling");
  if (v == nullptr) return rs;
  if (!v->is_object()) {
    return invalid_argument("config.json: \"rope_scaling\" must be null or an object, got " +
                            v->dump());
  }
  Fields f(*v, "config.json: rope_scaling");
  // transformers writes "rope_type"; older files say "type".
  R1_ASSIGN_OR_RETURN(std::optional<std::string> type, f.opt_string("rope_type"));
  if (!type) {
    R1_ASSIGN_OR_RETURN(type, f.opt_string("type"));
  }
  if (!type) return f.error("rope_type", "is missing");
  if (*type == "default") return rs;
  if (*type != "llama3") {
    return unimplemented("config.json: rope_scaling type '" + *type +
                         "' is not supported (supported: llama3)");
  }
  rs.type = RopeScaling::Type::kLlama3;
  const std::pair<std::string_view, double*> factors[] = {
      {"factor", &rs.factor},
      {"low_freq_factor", &rs.low_freq_factor},
      {"high_freq_factor", &rs.high_freq_factor}};
  for (auto [key, out] : factors) {
    R1_ASSIGN_OR_RETURN(std::optional<double> x, f.opt_number(key));
    if (!x) return f.error(key, "is missing");
    if (!(*x > 0) || !std::isfinite(*x))
      return f.error(key, "must be positive, got " + f.dump(key));
    *out = *x;
  }
  R1_ASSIGN_OR_RETURN(rs.original_max_position_embeddings,
                      f.positive_int("original_max_position_embeddings"));
  if (!(rs.low_freq_factor < rs.high_freq_factor)) {
    return f.error("high_freq_factor", "must be greater than low_freq_factor");
  }
  return rs;
}

Result<json> parse_object(const std::string& text, std::string_view file) {
  R1_ASSIGN_OR_RETURN(json root, detail::parse_json(text, file));
  if (!root.is_object()) {
    return invalid_argument(std::string(file) + ": is a JSON " + detail::json_type_name(root) +
                            ", not an object");
  }
  return root;
}

// Upper bounds far above any real model (the largest distill has hidden 8192,
// 80 layers, vocab 152064) that keep every tensor's element count, e.g.
// (n_heads * head_dim) * hidden, well inside int64, so nothing downstream has
// to guard against overflow from a hostile config.json.
Status check_limits(const ModelConfig& c) {
  constexpr int64_t kMaxWidth = int64_t{1} << 20;
  const struct {
    std::string_view key;
    int64_t value;
    int64_t limit;
  } limits[] = {
      {"hidden_size", c.hidden_size, kMaxWidth},
      {"intermediate_size", c.intermediate_size, kMaxWidth},
      {"num_attention_heads", c.n_heads, kMaxWidth},
      {"head_dim", c.head_dim, kMaxWidth},
      {"num_hidden_layers", c.n_layers, int64_t{1} << 12},
      {"vocab_size", c.vocab_size, int64_t{1} << 24},
      {"max_position_embeddings", c.max_position_embeddings, int64_t{1} << 30},
  };
  for (const auto& l : limits) {
    if (l.value > l.limit) {
      return out_of_range("config.json: \"" + std::string(l.key) + "\" " + std::to_string(l.value) +
                          " is over the limit of " + std::to_string(l.limit));
    }
  }
  return ok_status();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<ModelConfig> parse_model_config(const std::string& json_text) {
  R1_ASSIGN_OR_RETURN(json root, parse_object(json_text, "config.json"));
  Fields f(root, "config.json");
  ModelConfig c;
  R1_ASSIGN_OR_RETURN(auto arch, parse_arch(root, f));
  c.arch = arch.first;
  c.architecture = arch.second;

  R1_ASSIGN_OR_RETURN(c.hidden_size, f.positive_int("hidden_size"));
  R1_ASSIGN_OR_RETURN(c.intermediate_size, f.positive_int("intermediate_size"));
  R1_ASSIGN_OR_RETURN(c.n_layers, f.positive_int("num_hidden_layers"));
  R1_ASSIGN_OR_RETURN(c.n_heads, f.positive_int("num_attention_heads"));
  R1_ASSIGN_OR_RETURN(c.n_kv_heads, f.positive_int_or("num_key_value_heads", c.n_heads));
  R1_ASSIGN_OR_RETURN(c.vocab_size, f.positive_int("vocab_size"));
  // transformers' defaults when the key is absent: Qwen2Config 32768, LlamaConfig 2048.
  R1_ASSIGN_OR_RETURN(
      c.max_position_embeddings,
      f.positive_int_or("max_position_embeddings", c.arch == Arch::kQwen2 ? 32768 : 2048));
  R1_ASSIGN_OR_RETURN(c.rope_theta, f.positive_number_or("rope_theta", 10000.0));
  R1_ASSIGN_OR_RETURN(c.rms_norm_eps, f.positive_number_or("rms_norm_eps", 1e-6));

  if (c.n_heads % c.n_kv_heads != 0) {
    return invalid_argument("config.json: \"num_attention_heads\" " + std::to_string(c.n_heads) +
                            " is not a multiple of \"num_key_value_heads\" " +
                            std::to_string(c.n_kv_heads));
  }
  R1_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, f.opt_int("head_dim"));
  if (head_dim) {
    if (*head_dim <= 0) return f.error("head_dim", "must be positive, got " + f.dump("head_dim"));
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.n_heads != 0) {
      return invalid_argument("config.json: \"hidden_size\" " + std::to_string(c.hidden_size) +
                              " is not a multiple of \"num_attention_heads\" " +
                              std::to_string(c.n_heads) + " and no \"head_dim\" is given");
    }
    c.head_dim = c.hidden_size / c.n_heads;
  }
  if (c.head_dim % 2 != 0) {
    return invalid_argument("config.json: head_dim " + std::to_string(c.head_dim) +
                            " is odd; rotary embeddings need an even head_dim");
  }

  R1_RETURN_IF_ERROR(check_limits(c));
  R1_ASSIGN_OR_RETURN(c.rope_scaling, parse_rope_scaling(root));

  R1_ASSIGN_OR_RETURN(std::optional<std::string> act, f.opt_string("hidden_act"));
  if (act && *act != "silu") {
    return unimplemented("config.json: hidden_act '" + *act +
                         "' is not supported (supported: silu)");
  }
  R1_ASSIGN_OR_RETURN(std::optional<bool> tie, f.opt_bool("tie_word_embeddings"));
  c.tie_word_embeddings = tie.value_or(false);
  if (c.arch == Arch::kQwen2) {
    c.attention_bias = true;  // Qwen2Attention always builds q/k/v with bias
    R1_ASSIGN_OR_RETURN(std::optional<bool> sliding, f.opt_bool("use_sliding_window"));
    if (sliding.value_or(false)) {
      return unimplemented("config.json: use_sliding_window true is not supported");
    }
  } else {
    R1_ASSIGN_OR_RETURN(std::optional<bool> bias, f.opt_bool("attention_bias"));
    c.attention_bias = bias.value_or(false);
    // HF's Llama puts a bias on o_proj too when attention_bias is set; no
    // R1 distill does, and r1serve does not implement it.
    if (c.attention_bias) {
      return unimplemented("config.json: attention_bias true is not supported for Llama");
    }
    R1_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, f.opt_bool("mlp_bias"));
    if (mlp_bias.value_or(false)) {
      return unimplemented("config.json: mlp_bias true is not supported");
    }
  }

  // Newer transformers write "dtype" instead of "torch_dtype".
  R1_ASSIGN_OR_RETURN(std::optional<std::string> dtype, f.opt_string("torch_dtype"));
  if (!dtype) {
    R1_ASSIGN_OR_RETURN(dtype, f.opt_string("dtype"));
  }
  if (dtype) {
    std::optional<DType> t = parse_dtype(*dtype);
    if (!t) {
      return unimplemented("config.json: torch_dtype '" + *dtype +
                           "' is not supported (supported: bfloat16, float16, float32)");
    }
    c.torch_dtype = *t;
  }

  R1_ASSIGN_OR_RETURN(c.bos_token_id, f.opt_int("bos_token_id"));
  if (c.bos_token_id && *c.bos_token_id < 0) return f.error("bos_token_id", "must not be negative");
  R1_ASSIGN_OR_RETURN(c.eos_token_ids, f.id_list("eos_token_id"));
  return c;
}

Result<ModelConfig> load_model_config(const std::string& dir) {
  R1_ASSIGN_OR_RETURN(std::string text, detail::read_text_file(dir + "/config.json"));
  auto config = parse_model_config(text);
  if (!config.ok()) return config.status().with_context(dir);
  return config;
}

Result<GenerationConfig> parse_generation_config(const std::string& json_text) {
  constexpr std::string_view kFile = "generation_config.json";
  R1_ASSIGN_OR_RETURN(json root, parse_object(json_text, kFile));
  Fields f(root, std::string(kFile));
  GenerationConfig g;
  R1_ASSIGN_OR_RETURN(g.bos_token_id, f.opt_int("bos_token_id"));
  if (g.bos_token_id && *g.bos_token_id < 0) return f.error("bos_token_id", "must not be negative");
  R1_ASSIGN_OR_RETURN(g.eos_token_ids, f.id_list("eos_token_id"));
  R1_ASSIGN_OR_RETURN(std::optional<bool> do_sample, f.opt_bool("do_sample"));
  g.do_sample = do_sample.value_or(false);
  R1_ASSIGN_OR_RETURN(g.temperature, f.opt_number("temperature"));
  if (g.temperature && !(*g.temperature >= 0)) {
    return f.error("temperature", "must not be negative, got " + f.dump("temperature"));
  }
  R1_ASSIGN_OR_RETURN(g.top_p, f.opt_number("top_p"));
  if (g.top_p && !(*g.top_p > 0 && *g.top_p <= 1)) {
    return f.error("top_p", "must be in (0, 1], got " + f.dump("top_p"));
  }
  R1_ASSIGN_OR_RETURN(g.top_k, f.opt_int("top_k"));
  if (g.top_k && *g.top_k < 0) return f.error("top_k", "must not be negative");
  R1_ASSIGN_OR_RETURN(g.repetition_penalty, f.opt_number("repetition_penalty"));
  if (g.repetition_penalty && !(*g.repetition_penalty > 0)) {
    return f.error("repetition_penalty", "must be positive, got " + f.dump("repetition_penalty"));
  }
  return g;
}

Result<GenerationConfig> load_generation_config(const std::string& dir) {
  const std::string path = dir + "/generation_config.json";
  if (!file_exists(path)) return GenerationConfig{};
  R1_ASSIGN_OR_RETURN(std::string text, detail::read_text_file(path));
  auto config = parse_generation_config(text);
  if (!config.ok()) return config.status().with_context(dir);
  return config;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  const int64_t q_rows = c.n_heads * c.head_dim;
  const int64_t kv_rows = c.n_kv_heads * c.head_dim;
  std::vector<ExpectedTensor> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {c.hidden_size}});
    out.push_back({p + "self_attn.q_proj.weight", {q_rows, c.hidden_size}});
    if (c.attention_bias) out.push_back({p + "self_attn.q_proj.bias", {q_rows}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_rows, c.hidden_size}});
    if (c.attention_bias) out.push_back({p + "self_attn.k_proj.bias", {kv_rows}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_rows, c.hidden_size}});
    if (c.attention_bias) out.push_back({p + "self_attn.v_proj.bias", {kv_rows}});
    out.push_back({p + "self_attn.o_proj.weight", {c.hidden_size, q_rows}});
    out.push_back({p + "post_attention_layernorm.weight", {c.hidden_size}});
    out.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, c.hidden_size}});
    out.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, c.hidden_size}});
    out.push_back({p + "mlp.down_proj.weight", {c.hidden_size, c.intermediate_size}});
  }
  out.push_back({"model.norm.weight", {c.hidden_size}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}});
  return out;
}

}  // namespace r1
