// Everything r1serve reads from a Hugging Face model folder, checked and
// cross-checked: config.json, generation_config.json, the safetensors
// weights (validated against the config), tokenizer.json +
// tokenizer_config.json, and the chat template.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

struct ModelFolder {
  std::string dir;  // the folder, or the .gguf file
  ModelConfig config;
  GenerationConfig generation;
  std::shared_ptr<const WeightFiles> weights;
  std::shared_ptr<const Tokenizer> tokenizer;
  // The detected chat template, or why there is none (a model whose template
  // r1serve does not implement can still be used with raw prompts).
  std::optional<ChatTemplate> chat_template;
  Status chat_template_status;
  // BOS from the tokenizer (then generation_config, then config.json):
  // config.json's is wrong for the Qwen distills (model-facts.md §1.1).
  std::optional<int32_t> bos_id;
  // Ids that end generation: generation_config's eos ids, the tokenizer's
  // eos, and Llama-3's <|eot_id|> / <|eom_id|> where the vocabulary has them.
  std::vector<int32_t> stop_ids;
};

// `dir` is a Hugging Face folder, or a .gguf file (the first of a split set):
// then open_gguf_model.
Result<ModelFolder> open_model_folder(const std::string& dir);

// A GGUF model (model/gguf_model.cpp): config, tokenizer and chat template
// from the metadata, weights from the tensors (WeightFiles::from_gguf).
// Files whose tokenizer is not byte-level BPE, architectures other than
// qwen2 / llama, and RoPE scalings other than Llama-3.1's are UNIMPLEMENTED.
Result<ModelFolder> open_gguf_model(const std::string& path);
// Only the tokenizer of a GGUF file (vocabulary-only files included).
Result<Tokenizer> open_gguf_tokenizer(const std::string& path);

// The checks and derived fields shared by both: weights against the
// config, tokenizer size, BOS, stop ids, chat template detection (an
// unrecognised template is recorded under `template_label`). `m` carries
// dir, config and generation.
Result<ModelFolder> finish_model_folder(ModelFolder m, WeightFiles files, Tokenizer tok,
                                        const std::string& template_label);

}  // namespace r1
