// The reference kernels against hand-derived cases.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/reference_ops.h"

namespace r1::kernels {
namespace {

TEST(ReferenceOpsTest, MatmulSmallHandCase) {
  // W = [[1, 2, 3], [-1, 0, 0.5]], x = [[1, 1, 1], [2, 0, -2]], bias = [0.5, -1]
  std::vector<float> w = {1, 2, 3, -1, 0, 0.5f};
  std::vector<float> x = {1, 1, 1, 2, 0, -2};
  std::vector<float> b = {0.5f, -1};
  std::vector<float> y(4);
  reference::matmul(x.data(), MatrixView{w.data(), DType::kF32, 2, 3}, b.data(), 2, y.data());
  EXPECT_FLOAT_EQ(y[0], 6.5f);
  EXPECT_FLOAT_EQ(y[1], -1.5f);
  EXPECT_FLOAT_EQ(y[2], -3.5f);
  EXPECT_FLOAT_EQ(y[3], -4.0f);
}

TEST(ReferenceOpsTest, RmsnormHandCase) {
  // x = [3, 4]: mean of squares 12.5, rms = sqrt(12.5 + eps).
  std::vector<float> x = {3, 4}, w = {1, 2}, y(2);
  reference::rmsnorm(x.data(), w.data(), 0.0f, 1, 2, y.data());
  EXPECT_NEAR(y[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y[1], 8 / std::sqrt(12.5), 1e-6);
}

TEST(ReferenceOpsTest, RopeRotatesPairsHalfApart) {
  // head_dim 4: pairs (0,2) and (1,3); position 1, inv_freq = [pi/2, 0].
  std::vector<float> x = {1, 5, 0, 7};
  std::vector<float> inv = {static_cast<float>(M_PI / 2), 0.0f};
  int32_t pos = 1;
  reference::rope(x.data(), &pos, inv.data(), 1, 1, 4);
  EXPECT_NEAR(x[0], 0.0f, 1e-6);  // 1*cos - 0*sin
  EXPECT_NEAR(x[2], 1.0f, 1e-6);  // 0*cos + 1*sin
  EXPECT_NEAR(x[1], 5.0f, 1e-6);  // angle 0 leaves the pair alone
  EXPECT_NEAR(x[3], 7.0f, 1e-6);
}

TEST(ReferenceOpsTest, SiluMulHandCase) {
  std::vector<float> g = {0.0f, 1.0f}, u = {3.0f, 2.0f}, o(2);
  reference::silu_mul(g.data(), u.data(), 1, 2, 2, 2, o.data());
  EXPECT_FLOAT_EQ(o[0], 0.0f);
  EXPECT_NEAR(o[1], 2.0 / (1.0 + std::exp(-1.0)), 1e-6);
}

// One-hot keys make the softmax exact: with a huge score on one key the
// output is that key's value; with identical keys it is the mean of values.
TEST(ReferenceOpsTest, AttentionOneHotKeysAndUniformKeys) {
  const int32_t block_size = 2, n_kv = 1, d = 4, n_blocks = 3;
  std::vector<float> k(n_blocks * block_size * n_kv * d, 0.0f), v(k.size(), 0.0f);
  KvLayerView kv{k.data(), v.data(), n_blocks, block_size, n_kv, d};
  // Sequence positions 0..2 stored in blocks {2, 0}: position p -> slot.
  std::vector<int32_t> table = {2, 0};
  auto slot = [&](int p) { return table[p / block_size] * block_size + p % block_size; };
  for (int p = 0; p < 3; ++p) {
    k[slot(p) * d + p] = 100.0f;  // key p is one-hot on dimension p
    for (int i = 0; i < d; ++i) v[slot(p) * d + i] = static_cast<float>(10 * p + i);
  }
  std::vector<float> q = {0, 0, 1, 0};  // matches key 2 only
  int32_t qs[2] = {0, 1};
  int32_t pos = 2;
  AttentionBatch batch{1, qs, &pos, table.data(), 2};
  std::vector<float> out(d);
  reference::paged_attention(q.data(), kv, batch, 1, 1.0f, out.data());
  for (int i = 0; i < d; ++i) EXPECT_NEAR(out[i], 20 + i, 1e-4);
  // Position 1 cannot see key 2: q·k = 0 for keys 0 and 1 -> mean of v0, v1.
  pos = 1;
  reference::paged_attention(q.data(), kv, batch, 1, 1.0f, out.data());
  for (int i = 0; i < d; ++i) EXPECT_NEAR(out[i], 5 + i, 1e-5);
}

}  // namespace
}  // namespace r1::kernels
