#include "app/test_model_spec.h"

#include <nlohmann/json.hpp>

namespace r1 {

Result<ModelConfig> test_model_config(Arch arch, const std::string& size) {
  ModelConfig c;
  c.arch = arch;
  c.max_position_embeddings = 131072;
  c.tie_word_embeddings = false;
  if (arch == Arch::kQwen2) {
    c.architecture = "Qwen2ForCausalLM";
    c.vocab_size = 151936;
    c.attention_bias = true;
    c.rope_theta = 10000.0;
    c.rms_norm_eps = 1e-6;
    c.bos_token_id = 151643;
    c.eos_token_ids = {151643};
    if (size == "tiny") {
      // GQA group of 3 and sizes that are not powers of two, to catch layout bugs.
      c.hidden_size = 96, c.intermediate_size = 136, c.n_layers = 2, c.n_heads = 6,
      c.n_kv_heads = 2;
    } else if (size == "1.5b") {
      c.hidden_size = 1536, c.intermediate_size = 8960, c.n_layers = 28, c.n_heads = 12,
      c.n_kv_heads = 2;
    } else if (size == "7b") {
      c.hidden_size = 3584, c.intermediate_size = 18944, c.n_layers = 28, c.n_heads = 28,
      c.n_kv_heads = 4, c.vocab_size = 152064;
    } else {
      return invalid_argument("--size " + size + " is not a qwen2 size (tiny, 1.5b, 7b)");
    }
  } else {
    c.architecture = "LlamaForCausalLM";
    c.vocab_size = 128256;
    c.attention_bias = false;
    c.rope_theta = 500000.0;
    c.rms_norm_eps = 1e-5;
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001};
    c.rope_scaling.type = RopeScaling::Type::kLlama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
    if (size == "tiny") {
      c.hidden_size = 64, c.intermediate_size = 112, c.n_layers = 2, c.n_heads = 4,
      c.n_kv_heads = 2;
    } else if (size == "8b") {
      c.hidden_size = 4096, c.intermediate_size = 14336, c.n_layers = 32, c.n_heads = 32,
      c.n_kv_heads = 8;
    } else {
      return invalid_argument("--size " + size + " is not a llama size (tiny, 8b)");
    }
  }
  c.head_dim = c.hidden_size / c.n_heads;
  return c;
}

std::string test_model_config_json(const ModelConfig& c, DType dtype) {
  nlohmann::ordered_json j;
  j["architectures"] = {c.architecture};
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = c.bos_token_id.value_or(0);
  j["eos_token_id"] = c.eos_token_ids.empty() ? 0 : c.eos_token_ids[0];
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (c.arch == Arch::kQwen2) {
    j["max_window_layers"] = c.n_layers;
    j["model_type"] = "qwen2";
  } else {
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
    j["model_type"] = "llama";
    j["pretraining_tp"] = 1;
  }
  j["num_attention_heads"] = c.n_heads;
  j["num_hidden_layers"] = c.n_layers;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3) {
    j["rope_scaling"] = {
        {"factor", c.rope_scaling.factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings},
        {"rope_type", "llama3"}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["rope_theta"] = c.rope_theta;
  if (c.arch == Arch::kQwen2) j["sliding_window"] = 4096;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = dtype == DType::kF32   ? "float32"
                     : dtype == DType::kF16 ? "float16"
                                            : "bfloat16";
  j["transformers_version"] = "4.44.0";
  j["use_cache"] = true;
  if (c.arch == Arch::kQwen2) {
    j["use_mrope"] = false;
    j["use_sliding_window"] = false;
  }
  j["vocab_size"] = c.vocab_size;
  return j.dump(2) + "\n";
}

std::string test_model_generation_config_json(Arch arch) {
  nlohmann::ordered_json j;
  j["_from_model_config"] = true;
  j["bos_token_id"] = arch == Arch::kQwen2 ? 151646 : 128000;
  j["eos_token_id"] = arch == Arch::kQwen2 ? 151643 : 128001;
  j["do_sample"] = true;
  j["temperature"] = 0.6;
  j["top_p"] = 0.95;
  j["transformers_version"] = "4.44.0";
  return j.dump(2) + "\n";
}

}  // namespace r1
