// The generated shapes against model-facts.md table 1.1 (typed in by hand).
#include "app/test_model_spec.h"

#include <gtest/gtest.h>

namespace r1 {
namespace {

struct Facts {
  Arch arch;
  const char* size;
  int64_t hidden, inter, layers, heads, kv_heads, vocab;
  double theta, eps;
};

TEST(TestModelSpecTest, RealShapesMatchTheFactsTable) {
  for (const Facts& f : {Facts{Arch::kQwen2, "1.5b", 1536, 8960, 28, 12, 2, 151936, 10000, 1e-6},
                         Facts{Arch::kQwen2, "7b", 3584, 18944, 28, 28, 4, 152064, 10000, 1e-6},
                         Facts{Arch::kLlama, "8b", 4096, 14336, 32, 32, 8, 128256, 500000, 1e-5}}) {
    auto c = test_model_config(f.arch, f.size);
    ASSERT_TRUE(c.ok()) << c.status().message();
    EXPECT_EQ(c->hidden_size, f.hidden) << f.size;
    EXPECT_EQ(c->intermediate_size, f.inter) << f.size;
    EXPECT_EQ(c->n_layers, f.layers) << f.size;
    EXPECT_EQ(c->n_heads, f.heads) << f.size;
    EXPECT_EQ(c->n_kv_heads, f.kv_heads) << f.size;
    EXPECT_EQ(c->vocab_size, f.vocab) << f.size;
    EXPECT_EQ(c->head_dim, 128) << f.size;
    EXPECT_EQ(c->rope_theta, f.theta) << f.size;
    EXPECT_EQ(c->rms_norm_eps, f.eps) << f.size;
    EXPECT_FALSE(c->tie_word_embeddings);
  }
  auto l = test_model_config(Arch::kLlama, "8b");
  EXPECT_EQ(l->rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(l->rope_scaling.factor, 8.0);
  EXPECT_EQ(l->rope_scaling.original_max_position_embeddings, 8192);
}

TEST(TestModelSpecTest, ParameterCountsMatchPublishedTotals) {
  // model-facts.md §1.3: 1,777,088,000 (Qwen-1.5B), 7,615,616,512 (Qwen-7B),
  // 8,030,261,248 (Llama-8B).
  for (auto [arch, size, total] : {std::tuple{Arch::kQwen2, "1.5b", int64_t{1777088000}},
                                   std::tuple{Arch::kQwen2, "7b", int64_t{7615616512}},
                                   std::tuple{Arch::kLlama, "8b", int64_t{8030261248}}}) {
    auto c = test_model_config(arch, size);
    ASSERT_TRUE(c.ok());
    int64_t n = 0;
    for (const auto& t : expected_tensors(*c)) {
      int64_t e = 1;
      for (int64_t d : t.shape) e *= d;
      n += e;
    }
    EXPECT_EQ(n, total) << size;
  }
}

TEST(TestModelSpecTest, UnknownSizeIsAnError) {
  EXPECT_FALSE(test_model_config(Arch::kQwen2, "8b").ok());
  EXPECT_FALSE(test_model_config(Arch::kLlama, "1.5b").ok());
}

}  // namespace
}  // namespace r1
