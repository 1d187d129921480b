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
  std::string dir;
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

Result<ModelFolder> open_model_folder(const std::string& dir);

}  // namespace r1
