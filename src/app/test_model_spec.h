// Shapes of the models `make-test-model` generates: `tiny` for tests, and the
// exact shapes of the real R1-Distill models (model-facts.md table 1.1).
#pragma once

#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "format/model_config.h"

namespace r1 {

// The config.json a generated model carries, as ModelConfig fields plus the
// extra keys the real files have.
Result<ModelConfig> test_model_config(Arch arch, const std::string& size);

// config.json text written the way the real R1-Distill files are.
std::string test_model_config_json(const ModelConfig& config, DType dtype);
// generation_config.json text (BOS from the tokenizer, EOS, R1 sampling defaults).
std::string test_model_generation_config_json(Arch arch);

}  // namespace r1
