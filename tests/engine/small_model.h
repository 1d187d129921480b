// A small random Qwen2-shaped model on disk for engine tests that need a
// real CPU backend: 300 tokens plus 20 padding rows, 2 layers, GQA 3.
#pragma once

#include <filesystem>
#include <memory>

#include "format/model_config.h"
#include "format/safetensors.h"

namespace r1::testing_model {

constexpr int32_t kVocab = 300;

ModelConfig small_config();

// Random bf16 weights for every tensor the config implies, in one file.
std::shared_ptr<const WeightFiles> write_model(const ModelConfig& c,
                                               const std::filesystem::path& dir);

}  // namespace r1::testing_model
