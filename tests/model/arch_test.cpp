// RoPE frequencies against the values in model-facts.md §3.4 (computed there
// from the transformers formulas, independently of this code).
#include <gtest/gtest.h>

#include <cmath>

#include "model/arch.h"

namespace r1 {
namespace {

// The frequencies are rounded to f32 like HF's, so they agree with the
// published 10-digit values to f32 precision.
void expect_f32_close(float got, double want) {
  EXPECT_NEAR(got, want, std::fabs(want) * 3e-7);
}

TEST(ArchTest, DefaultInvFreqMatchesPublishedValues) {
  auto f = default_rope_inv_freq(10000.0, 128);
  ASSERT_EQ(f.size(), 64u);
  expect_f32_close(f[1], 0.8659643234);
  expect_f32_close(f[63], 1.154781985e-4);
  auto g = default_rope_inv_freq(1e6, 128);
  expect_f32_close(g[1], 0.8058421878);
  expect_f32_close(g[63], 1.240937761e-6);
}

TEST(ArchTest, Llama3ScalingKeepsBlendsAndDivides) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling.type = RopeScaling::Type::kLlama3;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 8192;
  auto base = default_rope_inv_freq(500000.0, 128);
  ArchSpec spec = llama_arch_spec(c);
  EXPECT_FALSE(spec.qkv_bias);
  expect_f32_close(base[30], 2.131119537e-3);
  expect_f32_close(spec.rope_inv_freq[30], 1.371893568e-3);
  expect_f32_close(spec.rope_inv_freq[35], 9.556212354e-5);
  expect_f32_close(spec.rope_inv_freq[63], 3.068925989e-7);
  for (int i = 0; i <= 28; ++i) EXPECT_EQ(spec.rope_inv_freq[i], base[i]) << i;
  for (int i = 35; i < 64; ++i) EXPECT_FLOAT_EQ(spec.rope_inv_freq[i], base[i] / 8) << i;
}

TEST(ArchTest, QwenHasBiasesAndNoScaling) {
  ModelConfig c;
  c.arch = Arch::kQwen2;
  c.head_dim = 128;
  c.rope_theta = 10000.0;
  ArchSpec spec = arch_spec(c);
  EXPECT_TRUE(spec.qkv_bias);
  EXPECT_EQ(spec.rope_inv_freq, default_rope_inv_freq(10000.0, 128));
}

}  // namespace
}  // namespace r1
