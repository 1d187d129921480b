#include "small_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/dtype.h"

namespace r1::testing_model {

namespace fs = std::filesystem;

ModelConfig small_config() {
  ModelConfig c;
  c.arch = Arch::kQwen2;
  c.architecture = "Qwen2ForCausalLM";
  c.hidden_size = 48;
  c.intermediate_size = 72;
  c.n_layers = 2;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = kVocab + 20;  // 20 padding rows, masked
  c.max_position_embeddings = 512;
  c.attention_bias = true;
  return c;
}

// Random bf16 weights for every tensor the config implies, in one file.
std::shared_ptr<const WeightFiles> write_model(const ModelConfig& c, const fs::path& dir) {
  fs::create_directories(dir);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : expected_tensors(c)) {
    TensorToWrite t{spec.name, DType::kBF16, spec.shape, {}};
    int64_t n = 1;
    for (int64_t x : spec.shape) n *= x;
    t.bytes.resize(static_cast<size_t>(2 * n));
    const bool norm = spec.name.find("norm") != std::string::npos;
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = f32_to_bf16(norm ? 1.0f + d(rng) * 0.2f : d(rng));
      std::memcpy(t.bytes.data() + 2 * i, &h, 2);
    }
    tensors.push_back(std::move(t));
  }
  EXPECT_TRUE(write_safetensors((dir / "model.safetensors").string(), tensors).ok());
  auto files = WeightFiles::open_folder(dir.string());
  EXPECT_TRUE(files.ok()) << files.status().message();
  return std::make_shared<const WeightFiles>(std::move(files).value());
}

}  // namespace r1::testing_model
