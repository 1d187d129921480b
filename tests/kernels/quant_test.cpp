// Quantised weights and the integer kernels: quantisation error bounds, the
// activation quantiser against the reference's own, and every CPU path
// (scalar, AVX2, AVX-512 where the CPU has it) against the reference on odd
// shapes, thread counts and token counts around the 4-token micro-kernel.
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu_ops.h"
#include "kernels/reference_ops.h"

namespace r1::kernels {
namespace {

using testing::expect_close;
using testing::for_each_isa;
using testing::random_floats;
using testing::random_matrix;

struct QuantCase {
  DType dtype;
  int64_t group;  // int8: 0 = per row
};

// int8 group 96: three blocks, so the AVX-512 kernels' two-block vectors
// end each group with a half.
const QuantCase kCases[] = {
    {DType::kQ8, 0}, {DType::kQ8, 32}, {DType::kQ8, 64}, {DType::kQ4, 32}, {DType::kQ8, 96}};

TEST(QuantTest, Int4LayoutPlacesEveryValueOnceAndMatchesItsActivation) {
  // Rows of 1, 7, 15 and 16 blocks (one group, short or full), 17 and 33 (a
  // lone block after full groups), 280 (the 1.5b shape's 8960 columns).
  for (int64_t n_blocks : {1, 7, 15, 16, 17, 33, 280}) {
    std::vector<int> nibble_uses(static_cast<size_t>(n_blocks * 32), 0);
    std::vector<int> x_uses(static_cast<size_t>(n_blocks * 32), 0);
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (int j = 0; j < kQuantBlock; ++j) {
        const Q4Slot s = q4_slot(n_blocks, b, j);
        ASSERT_GE(s.byte, 0);
        ASSERT_LT(s.byte, n_blocks * 16) << n_blocks << " blocks, block " << b << " value " << j;
        ++nibble_uses[static_cast<size_t>(s.byte * 2 + (s.high ? 1 : 0))];
        const int64_t xi = q4_x_index(n_blocks, b, j);
        ASSERT_GE(xi, 0);
        ASSERT_LT(xi, n_blocks * 32);
        ++x_uses[static_cast<size_t>(xi)];
        // The activation meets its weight: byte k of the weights (lane k / 4
        // of a part) pairs with byte k of the low or high activation slice.
        const int64_t g0 = b / kQ4Group * kQ4Group;
        const int64_t t = q4_group_blocks(n_blocks, g0);
        const int64_t in_part = (s.byte - g0 * 16) % (4 * t);
        const int64_t part = (s.byte - g0 * 16) / (4 * t);
        EXPECT_EQ(xi, g0 * 32 + part * 8 * t + (s.high ? 4 * t : 0) + in_part);
      }
    }
    for (size_t i = 0; i < nibble_uses.size(); ++i) {
      ASSERT_EQ(nibble_uses[i], 1) << n_blocks << " blocks, nibble " << i;
      ASSERT_EQ(x_uses[i], 1) << n_blocks << " blocks, activation byte " << i;
    }
  }
}

TEST(QuantTest, DequantisedWeightsAreWithinHalfAStep) {
  ThreadPool pool(2);
  for (DType src : {DType::kF32, DType::kBF16}) {
    for (const QuantCase& qc : kCases) {
      const int64_t rows = 7, cols = 136;  // 136 = 4 blocks + 8: a padded last block
      auto w = random_matrix(rows, cols, src, 17);
      if (qc.group != 0 && quant_padded_cols(cols) % qc.group != 0) continue;
      OwnedMatrix q = quantize_matrix(w.view, qc.dtype, qc.group, pool);
      const MatrixView v = q.view();
      const int64_t group = v.group_size;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g0 = 0; g0 < cols; g0 += group) {
          float amax = 0.0f;
          for (int64_t c = g0; c < std::min(cols, g0 + group); ++c) {
            amax = std::max(amax, std::fabs(matrix_at(w.view, r, c)));
          }
          // int8: step amax/127, error <= step/2. int4: step amax/8 (f16
          // rounded); the value opposite the extreme clamps from +8 to 7,
          // so a full step.
          const float step = qc.dtype == DType::kQ8 ? amax / 127.0f : amax / 8.0f * 1.001f;
          const float bound = qc.dtype == DType::kQ8 ? step * 0.5001f : step;
          for (int64_t c = g0; c < std::min(cols, g0 + group); ++c) {
            ASSERT_LE(std::fabs(matrix_at(v, r, c) - matrix_at(w.view, r, c)), bound + 1e-7f)
                << dtype_name(qc.dtype) << " group " << group << " at " << r << "," << c;
          }
        }
      }
    }
  }
}

TEST(QuantTest, Int4ReproducesTheLargestValueOfEachGroup) {
  ThreadPool pool(1);
  auto w = random_matrix(3, 64, DType::kF32, 5);
  OwnedMatrix q = quantize_matrix(w.view, DType::kQ4, 32, pool);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t b = 0; b < 2; ++b) {
      float m = 0.0f;
      for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
        if (std::fabs(matrix_at(w.view, r, c)) > std::fabs(m)) m = matrix_at(w.view, r, c);
      }
      bool found = false;
      for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
        if (matrix_at(w.view, r, c) == m) {
          // -8 * the f16-rounded scale: within f16 rounding (2^-11 relative).
          EXPECT_NEAR(matrix_at(q.view(), r, c), m, std::fabs(m) * 1e-3f);
          found = true;
        }
      }
      EXPECT_TRUE(found);
    }
  }
}

TEST(QuantTest, ActivationQuantiserMatchesTheReference) {
  for (int64_t cols : {1, 31, 32, 33, 96, 136, 1000}) {
    auto x = random_floats(static_cast<size_t>(cols), 40 + cols, -3.0f, 3.0f);
    x[0] = 0.0f;
    const int64_t padded = quant_padded_cols(cols);
    std::vector<int8_t> q1(padded), q2(padded);
    std::vector<float> s1(padded / 32), s2(padded / 32);
    quantize_row_q8(x.data(), cols, q1.data(), s1.data());
    reference::quantize_activations(x.data(), cols, q2.data(), s2.data());
    EXPECT_EQ(q1, q2) << cols;
    EXPECT_EQ(s1, s2) << cols;
  }
  std::vector<float> zeros(40, 0.0f);
  std::vector<int8_t> q(64, 1);
  std::vector<float> s(2, 1.0f);
  quantize_row_q8(zeros.data(), 40, q.data(), s.data());
  EXPECT_EQ(q, std::vector<int8_t>(64, 0));
  EXPECT_EQ(s, std::vector<float>(2, 0.0f));
}

class QuantMatmulTest : public ::testing::TestWithParam<int> {
 protected:
  ThreadPool pool_{GetParam()};
};

TEST_P(QuantMatmulTest, EveryPathMatchesTheReference) {
  struct Shape {
    int64_t n_tokens, rows, cols;
  };
  // Odd and even block counts. For int4 (groups of 16 blocks; AVX2 takes a
  // group as two halves of 8): one short group (96 columns: 3 blocks, 136:
  // 5, 192: 6, 200: 7, 257: 9, so a partial second half), whole groups only
  // (1000: 2, 1536: 3), and whole groups then a short one of under 8 (600:
  // 16 + 3, 2600: 5 x 16 + 2) or over 8 (800: 16 + 9), for decode (1-3
  // tokens) and prefill shapes.
  for (Shape s :
       {Shape{1, 37, 96}, Shape{3, 29, 136}, Shape{4, 17, 257}, Shape{5, 9, 64}, Shape{9, 33, 31},
        Shape{1, 1, 1}, Shape{2, 7, 1000}, Shape{6, 5, 1536}, Shape{3, 7, 192}, Shape{5, 6, 200},
        Shape{2, 5, 2600}, Shape{1, 9, 800}, Shape{2, 6, 600}, Shape{7, 5, 800}}) {
    auto w = random_matrix(s.rows, s.cols, DType::kBF16, 3 + s.rows);
    auto x = random_floats(static_cast<size_t>(s.n_tokens * s.cols), 9 + s.cols, -2.0f, 2.0f);
    auto bias = random_floats(static_cast<size_t>(s.rows), 4);
    for (const QuantCase& qc : kCases) {
      if (qc.group != 0 && quant_padded_cols(s.cols) % qc.group != 0) continue;
      OwnedMatrix q = quantize_matrix(w.view, qc.dtype, qc.group, pool_);
      std::vector<float> want(static_cast<size_t>(s.n_tokens * s.rows)), got(want.size());
      reference::matmul_quantized(x.data(), q.view(), bias.data(), s.n_tokens, want.data());
      for_each_isa([&](const std::string& isa) {
        std::fill(got.begin(), got.end(), NAN);
        cpu::matmul(x.data(), q.view(), bias.data(), s.n_tokens, got.data(), pool_);
        // Integer block sums are exact; what differs is the f32 summation of
        // up to 82 block terms of magnitude <= 32 * 2 * 1.
        expect_close(got, want, 1e-5f * static_cast<float>(s.cols), 1e-5f,
                     isa + " " + std::string(dtype_name(qc.dtype)) + " group " +
                         std::to_string(qc.group) + " " + std::to_string(s.n_tokens) + "x" +
                         std::to_string(s.rows) + "x" + std::to_string(s.cols));
      });
    }
  }
}

TEST_P(QuantMatmulTest, ActivationRoundingStaysWithinItsBound) {
  // Against the unquantised activations: each x moves by at most half its
  // block's step (max|x| / 254), so |error| <= sum_i |w_i| * step_i / 2.
  const int64_t rows = 13, cols = 200, n_tokens = 3;
  auto w = random_matrix(rows, cols, DType::kF32, 8);
  auto x = random_floats(static_cast<size_t>(n_tokens * cols), 21, -4.0f, 4.0f);
  for (const QuantCase& qc : {kCases[0], kCases[3]}) {
    OwnedMatrix q = quantize_matrix(w.view, qc.dtype, qc.group, pool_);
    std::vector<float> exact(static_cast<size_t>(n_tokens * rows)), got(exact.size());
    reference::matmul(x.data(), q.view(), nullptr, n_tokens, exact.data());
    cpu::matmul(x.data(), q.view(), nullptr, n_tokens, got.data(), pool_);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t o = 0; o < rows; ++o) {
        double bound = 1e-4;
        for (int64_t b0 = 0; b0 < cols; b0 += 32) {
          float amax = 0.0f;
          for (int64_t c = b0; c < std::min(cols, b0 + 32); ++c) {
            amax = std::max(amax, std::fabs(x[t * cols + c]));
          }
          for (int64_t c = b0; c < std::min(cols, b0 + 32); ++c) {
            bound += std::fabs(matrix_at(q.view(), o, c)) * amax / 254.0;
          }
        }
        EXPECT_LE(std::fabs(got[t * rows + o] - exact[t * rows + o]), bound)
            << dtype_name(qc.dtype) << " token " << t << " row " << o;
      }
    }
  }
}

TEST_P(QuantMatmulTest, MultiAndFusedSiluMatchSeparateProducts) {
  const int64_t cols = 136, n_tokens = 6;
  auto x = random_floats(static_cast<size_t>(n_tokens * cols), 2);
  for (DType dt : {DType::kBF16, DType::kQ8, DType::kQ4}) {
    std::vector<testing::RandomMatrix> src;
    for (int64_t rows : {40, 24, 24}) src.push_back(random_matrix(rows, cols, DType::kBF16, rows));
    std::vector<OwnedMatrix> quant;
    std::vector<MatrixView> views;
    for (auto& m : src) {
      if (dt == DType::kBF16) {
        views.push_back(m.view);
      } else {
        quant.push_back(quantize_matrix(m.view, dt, 0, pool_));
        views.push_back(quant.back().view());
      }
    }
    auto bias = random_floats(40, 6);
    std::vector<std::vector<float>> want(3), got(3);
    std::vector<cpu::MatmulOutput> outs;
    for (size_t i = 0; i < 3; ++i) {
      want[i].resize(static_cast<size_t>(n_tokens * views[i].rows));
      got[i].resize(want[i].size());
      const float* b = i == 0 ? bias.data() : nullptr;
      cpu::matmul(x.data(), views[i], b, n_tokens, want[i].data(), pool_);
      outs.push_back({views[i], b, got[i].data()});
    }
    cpu::matmul_multi(x.data(), n_tokens, outs, pool_);
    for (size_t i = 0; i < 3; ++i) {
      expect_close(got[i], want[i], 0.0f, 0.0f, "multi " + std::string(dtype_name(dt)));
    }
    // gate = views[1], up = views[2]
    std::vector<float> fused(static_cast<size_t>(n_tokens * 24)), sep(fused.size());
    cpu::matmul_silu_mul(x.data(), views[1], views[2], n_tokens, fused.data(), pool_);
    reference::silu_mul(want[1].data(), want[2].data(), n_tokens, 24, 24, 24, sep.data());
    expect_close(fused, sep, 1e-6f, 1e-5f, "silu " + std::string(dtype_name(dt)));
  }
}

TEST(QuantMatmulInvarianceTest, TokensAloneOrTogetherAnyThreadsGiveTheSameBits) {
  // What keeps greedy serving output independent of batch composition and
  // thread count: each (row, token) result is bit-identical whatever kernel
  // shape computed it.
  // 200 columns: 7 blocks (one short int4 group); 288: 9 (three int8
  // groups of 96); 600: 19 (a full group of 16, then 3); 2048: bf16
  // prefill takes its rows in two blocks (256 KB of weights is 64 rows)
  // and a leftover of 3.
  for (const int64_t cols : {200, 288, 600, 2048}) {
    const int64_t rows = 67, n_tokens = 11;
    auto w = random_matrix(rows, cols, DType::kBF16, 31);
    auto x = random_floats(static_cast<size_t>(n_tokens * cols), 32, -3.0f, 3.0f);
    ThreadPool one(1), two(2), three(3);
    // int8 in groups of 96: a whole pair then a lone block per group, so
    // the even and odd pair accumulators of the VNNI path both see a group
    // end.
    for (const QuantCase& qc :
         {QuantCase{DType::kBF16, 0}, kCases[0], kCases[1], kCases[3], kCases[4]}) {
      if (qc.group != 0 && quant_padded_cols(cols) % qc.group != 0) continue;
      OwnedMatrix q;
      MatrixView v = w.view;
      if (qc.dtype != DType::kBF16) {
        q = quantize_matrix(w.view, qc.dtype, qc.group, one);
        v = q.view();
      }
      for_each_isa([&](const std::string& isa) {
        std::vector<float> together(static_cast<size_t>(n_tokens * rows));
        cpu::matmul(x.data(), v, nullptr, n_tokens, together.data(), three);
        for (ThreadPool* pool : {&one, &two}) {
          // Every split of the tokens into consecutive calls of 1..5 tokens.
          std::vector<float> split(together.size());
          for (int64_t t = 0, step = 1; t < n_tokens; t += step, step = step % 5 + 1) {
            const int64_t n = std::min(step, n_tokens - t);
            cpu::matmul(x.data() + t * cols, v, nullptr, n, split.data() + t * rows, *pool);
          }
          ASSERT_EQ(0, std::memcmp(split.data(), together.data(), split.size() * sizeof(float)))
              << isa << " " << dtype_name(qc.dtype) << " group " << qc.group << " threads "
              << pool->n_threads() << " cols " << cols;
        }
      });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, QuantMatmulTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace r1::kernels
