// config.json and generation_config.json of a Hugging Face model folder
// (Qwen2ForCausalLM, LlamaForCausalLM), and the tensor shapes they imply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace r1 {

enum class Arch { kQwen2, kLlama };

// rope_scaling; kNone when the key is absent or null.
struct RopeScaling {
  enum class Type { kNone, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Arch arch = Arch::kQwen2;
  std::string architecture;  // as in the file, e.g. "Qwen2ForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;    // "head_dim" key, else hidden_size / n_heads
  int64_t vocab_size = 0;  // embedding rows (may exceed the tokenizer's size)
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases: always for Qwen2, "attention_bias" for Llama
  DType torch_dtype = DType::kBF16;
  std::optional<int64_t> bos_token_id;  // as written; not to be trusted for Qwen (see facts)
  std::vector<int64_t> eos_token_ids;
};

// Parses config.json text. The architecture is architectures[0], or derived
// from model_type ("qwen2", "llama") when architectures is absent. Unknown
// architectures, rope_scaling types other than llama3, hidden_act other than
// silu, sliding windows and MLP biases are UNIMPLEMENTED with the name; missing
// or inconsistent fields are INVALID_ARGUMENT naming the key; sizes past sane
// limits (e.g. more than 4096 layers) are OUT_OF_RANGE. Optional keys:
// num_key_value_heads (default n_heads), head_dim, rope_theta (10000),
// rms_norm_eps (1e-6), max_position_embeddings (transformers' defaults),
// tie_word_embeddings (false), torch_dtype or dtype, bos/eos ids.
Result<ModelConfig> parse_model_config(const std::string& json_text);
Result<ModelConfig> load_model_config(const std::string& dir);

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // int or list in the file
  bool do_sample = false;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> repetition_penalty;
};

// A missing generation_config.json gives the defaults; a malformed one is an error.
Result<GenerationConfig> parse_generation_config(const std::string& json_text);
Result<GenerationConfig> load_generation_config(const std::string& dir);

// One expected tensor: HF name and shape.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor the config implies, in the order of model-facts.md §3.6
// (embedding, per layer, final norm, lm_head unless tied).
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

}  // namespace r1
