// Every op and the sampler of every built backend against kernels/reference,
// on seeded random inputs with odd sizes. A backend that is built but cannot
// run here (CUDA without a GPU) is skipped with its reason; with
// R1SERVE_REQUIRE_GPU=1 (scripts/gpu-check.sh) that is a failure instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "backend_ops.h"
#include "kernel_test_util.h"
#include "kernels/cuda/host_quant.h"
#include "kernels/reference_ops.h"

namespace r1::kernels::testing {
namespace {

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ops_ = make_backend_ops(GetParam());
    const std::string why = ops_->unavailable_reason();
    if (why.empty()) return;
    const char* require = std::getenv("R1SERVE_REQUIRE_GPU");
    if (require != nullptr && std::string(require) == "1") {
      FAIL() << GetParam() << " is built but cannot run: " << why;
    }
    GTEST_SKIP() << GetParam() << " is built but cannot run here: " << why;
  }

  std::vector<float> rounded(std::vector<float> v) const {
    for (float& x : v) x = ops_->round_input(x);
    return v;
  }
  std::vector<float> random(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) const {
    return rounded(random_floats(n, seed, lo, hi));
  }
  void expect(const std::vector<float>& got, const std::vector<float>& want,
              const std::string& what) const {
    expect_close(got, want, ops_->atol(), ops_->rtol(), GetParam() + " " + what);
  }

  std::unique_ptr<BackendOps> ops_;
};

TEST_P(BackendOpsTest, Embedding) {
  const int64_t vocab = 37, hidden = 67;
  const auto table = random(static_cast<size_t>(vocab * hidden), 1);
  const std::vector<int32_t> ids = {5, 0, 36, 5, 17};
  std::vector<float> got, want(ids.size() * hidden);
  ops_->embedding(table, hidden, ids, got);
  reference::embedding(f32_view(table, vocab, hidden), ids.data(), 5, want.data());
  expect(got, want, "embedding");
}

TEST_P(BackendOpsTest, RmsNormAndTheFusedResidualAdd) {
  const int64_t n = 5, dim = 131;
  const auto x = random(n * dim, 2, -3.0f, 3.0f);
  const auto h = random(n * dim, 3);
  const auto w = random(dim, 4, 0.5f, 1.5f);
  std::vector<float> got, want(n * dim);
  ops_->rmsnorm(x, w, 1e-6f, n, dim, got);
  reference::rmsnorm(x.data(), w.data(), 1e-6f, n, dim, want.data());
  expect(got, want, "rmsnorm");

  std::vector<float> x_added = x, x_want = x;
  ops_->add_rmsnorm(x_added, h, w, 1e-6f, n, dim, got);
  for (size_t i = 0; i < x_want.size(); ++i) x_want[i] += h[i];
  reference::rmsnorm(x_want.data(), w.data(), 1e-6f, n, dim, want.data());
  expect(x_added, x_want, "residual stream after add");
  expect(got, want, "add + rmsnorm");
}

TEST_P(BackendOpsTest, MatmulAtDecodeAndPrefillSizes) {
  const int64_t m = 67, k = 72;
  const auto w = random(m * k, 5);
  for (int64_t n : {1, 3, 17}) {
    const auto x = random(static_cast<size_t>(n * k), 6 + n);
    std::vector<float> got, want(static_cast<size_t>(n * m));
    ops_->matmul(x, w, n, m, k, got);
    reference::matmul(x.data(), f32_view(w, m, k), nullptr, n, want.data());
    expect(got, want, "matmul n=" + std::to_string(n));
  }
}

// Weight-only int8 / FP8 rows (quantised on the host as the GPU backend does
// at load): the decode GEMV (n <= 8, with a row length that is not a
// multiple of 16) and the dequantise-then-GEMM path (n = 17).
TEST_P(BackendOpsTest, WeightOnlyQuantisedMatmul) {
  for (bool fp8 : {false, true}) {
    for (int64_t k : {72, 100}) {
      const int64_t m = 67;
      const auto w = random_floats(static_cast<size_t>(m * k), 30 + k);
      std::vector<uint8_t> q(w.size());
      std::vector<float> scales(static_cast<size_t>(m));
      const auto kind = fp8 ? cuda::QuantKind::kFp8E4M3 : cuda::QuantKind::kInt8;
      cuda::quantize_rows(kind, w.data(), m, k, q.data(), scales.data());
      std::vector<float> deq(w.size());
      for (size_t i = 0; i < deq.size(); ++i) {
        deq[i] = cuda::dequantize_value(kind, q[i]) * scales[i / static_cast<size_t>(k)];
      }
      for (int64_t n : {1, 5, 17}) {
        const auto x = random(static_cast<size_t>(n * k), 40 + n);
        std::vector<float> got, want(static_cast<size_t>(n * m));
        if (!ops_->weight_only_matmul(fp8, q, scales, x, n, m, k, got)) {
          GTEST_SKIP() << GetParam() << " has no weight-only quantised product";
        }
        reference::matmul(x.data(), f32_view(deq, m, k), nullptr, n, want.data());
        expect(got, want,
               std::string(fp8 ? "fp8" : "int8") + " n=" + std::to_string(n) +
                   " k=" + std::to_string(k));
      }
    }
  }
}

// int8 tensor cores (--int8-prefill int8-gemm): the activations quantised
// per token on the device. The reference quantises both operands by
// quantize_rows' rule on the host and sums the integer products exactly
// (int64). The output is f32 and the sums exact, so the tolerance covers
// only the last float products: 1e-5 relative plus 1e-3, where one
// activation off by a quantisation step moves an output by about 0.02 and
// truncating instead of rounding by more. Token counts of 9 and 33 (more
// than the GEMV takes, neither a multiple of 4); m and k multiples of 4, as
// cuBLASLt's int8 products need.
TEST_P(BackendOpsTest, Int8TensorCoreMatmul) {
  const int64_t m = 68, k = 100;
  const auto w = random_floats(static_cast<size_t>(m * k), 60);
  std::vector<uint8_t> wq(w.size());
  std::vector<float> w_scales(static_cast<size_t>(m));
  cuda::quantize_rows(cuda::QuantKind::kInt8, w.data(), m, k, wq.data(), w_scales.data());
  for (int64_t n : {9, 33}) {
    const auto x = random(static_cast<size_t>(n * k), 61 + n, -3.0f, 3.0f);
    std::vector<float> got;
    const std::string why = ops_->int8_gemm_matmul(wq, w_scales, x, n, m, k, got);
    if (!why.empty()) GTEST_SKIP() << GetParam() << ": " << why;
    std::vector<uint8_t> xq(x.size());
    std::vector<float> x_scales(static_cast<size_t>(n));
    cuda::quantize_rows(cuda::QuantKind::kInt8, x.data(), n, k, xq.data(), x_scales.data());
    std::vector<float> want(static_cast<size_t>(n * m));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t r = 0; r < m; ++r) {
        int64_t sum = 0;
        for (int64_t c = 0; c < k; ++c) {
          sum += int64_t{static_cast<int8_t>(xq[static_cast<size_t>(t * k + c)])} *
                 static_cast<int8_t>(wq[static_cast<size_t>(r * k + c)]);
        }
        want[static_cast<size_t>(t * m + r)] = static_cast<float>(sum) *
                                               x_scales[static_cast<size_t>(t)] *
                                               w_scales[static_cast<size_t>(r)];
      }
    }
    expect_close(got, want, 1e-3f, 1e-5f,
                 GetParam() + " int8 tensor-core matmul n=" + std::to_string(n));
  }
}

// FP8 tensor cores: both operands quantised with one scale each. The
// reference quantises the same way on the host (scale = amax / 448, round to
// nearest E4M3), so only the accumulation order differs.
TEST_P(BackendOpsTest, Fp8TensorCoreMatmul) {
  const int64_t m = 80, k = 96, n = 24;
  const auto w = random_floats(static_cast<size_t>(m * k), 50);
  const auto x = random(static_cast<size_t>(n * k), 51, -3.0f, 3.0f);
  std::vector<float> got;
  const std::string why = ops_->fp8_matmul(w, x, n, m, k, got);
  if (!why.empty()) GTEST_SKIP() << GetParam() << ": " << why;
  auto fp8_tensor = [](const std::vector<float>& v) {
    float amax = 0.0f;
    for (float e : v) amax = std::max(amax, std::fabs(e));
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      out[i] = cuda::fp8_e4m3_to_float(cuda::float_to_fp8_e4m3(v[i] / scale)) * scale;
    }
    return out;
  };
  const auto wq = fp8_tensor(w), xq = fp8_tensor(x);
  std::vector<float> want(static_cast<size_t>(n * m));
  reference::matmul(xq.data(), f32_view(wq, m, k), nullptr, n, want.data());
  expect(got, want, "fp8 matmul");
}

TEST_P(BackendOpsTest, SiluMul) {
  const int64_t n = 3, inter = 45;
  const auto gu = random(n * 2 * inter, 7, -4.0f, 4.0f);
  std::vector<float> got, want(n * inter);
  ops_->silu_mul(gu, n, inter, got);
  reference::silu_mul(gu.data(), gu.data() + inter, n, inter, 2 * inter, inter, want.data());
  expect(got, want, "silu_mul");
}

// Two sequences in one step: a 601-token prefill (long enough for a device
// backend to split the context) and a 7-token one, GQA 4:2, with biases.
TEST_P(BackendOpsTest, AttentionBlockOverThePagedCache) {
  AttentionCase c;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.block_size = 16;
  const int lens[2] = {601, 7};
  c.max_blocks = (lens[0] + c.block_size - 1) / c.block_size;
  c.n_blocks = 2 * c.max_blocks + 3;
  c.query_start = {0, lens[0], lens[0] + lens[1]};
  c.block_tables.assign(2 * static_cast<size_t>(c.max_blocks), -1);
  // Blocks handed out in a shuffled order, as a real pool does.
  std::vector<int32_t> free_blocks(static_cast<size_t>(c.n_blocks));
  for (int i = 0; i < c.n_blocks; ++i) free_blocks[static_cast<size_t>(i)] = i;
  std::shuffle(free_blocks.begin(), free_blocks.end(), std::mt19937(11));
  size_t next = 0;
  for (int s = 0; s < 2; ++s) {
    for (int p = 0; p < lens[s]; ++p) {
      int32_t& b = c.block_tables[static_cast<size_t>(s * c.max_blocks + p / c.block_size)];
      if (b < 0) b = free_blocks[next++];
      c.positions.push_back(p);
      c.slots.push_back(b * c.block_size + p % c.block_size);
    }
  }
  const int64_t n = c.n_tokens(), hd = c.head_dim;
  const int64_t width = (c.n_heads + 2 * c.n_kv_heads) * hd;
  c.qkv = random(static_cast<size_t>(n * width), 8, -2.0f, 2.0f);
  c.bias = random(static_cast<size_t>(width), 9, -0.5f, 0.5f);
  for (int64_t i = 0; i < hd / 2; ++i) {
    c.inv_freq.push_back(static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / hd)));
  }
  std::vector<float> got;
  ops_->attention_block(c, got);

  // The reference: the same steps with the reference ops.
  const int64_t q_w = c.n_heads * hd, kv_w = c.n_kv_heads * hd;
  std::vector<float> q(n * q_w), k(n * kv_w), v(n * kv_w);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < width; ++j) {
      const float x = c.qkv[t * width + j] + c.bias[j];
      if (j < q_w) {
        q[t * q_w + j] = x;
      } else if (j < q_w + kv_w) {
        k[t * kv_w + j - q_w] = x;
      } else {
        v[t * kv_w + j - q_w - kv_w] = x;
      }
    }
  }
  reference::rope(q.data(), c.positions.data(), c.inv_freq.data(), n, c.n_heads, hd);
  reference::rope(k.data(), c.positions.data(), c.inv_freq.data(), n, c.n_kv_heads, hd);
  std::vector<float> kc(static_cast<size_t>(c.n_blocks) * c.block_size * kv_w, 0.0f),
      vc(kc.size(), 0.0f);
  KvLayerView kv{kc.data(), vc.data(), c.n_blocks, c.block_size, c.n_kv_heads, c.head_dim};
  reference::kv_store(kv, k.data(), v.data(), c.slots.data(), n);
  AttentionBatch batch{2, c.query_start.data(), c.positions.data(), c.block_tables.data(),
                       c.max_blocks};
  std::vector<float> want(n * q_w);
  reference::paged_attention(q.data(), kv, batch, c.n_heads,
                             1.0f / std::sqrt(static_cast<float>(hd)), want.data());
  expect(got, want, "attention block");
}

// The sampler: for each chain, 300 draws. The chosen id is the reference's
// for the same draw (a device may differ only where its differently ordered
// double sums round across a boundary: at most 1%), is never a token the
// reference drops, and logprobs match.
TEST_P(BackendOpsTest, SamplerMatchesTheReference) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits = random_floats(1000, 12, -4.0f, 4.0f);
  logits[7] = -inf;
  logits[8] = std::nanf("");
  logits[9] = inf;
  const std::vector<int32_t> prompt = {1, 2, 3, 500, 2};
  const std::vector<int32_t> generated = {500, 17, 17, 42};
  struct Case {
    const char* name;
    SamplingParams p;
  };
  std::vector<Case> cases(10);
  cases[0] = {"greedy", {}};
  cases[0].p.temperature = 0.0f;
  cases[1] = {"greedy + penalties", {}};
  cases[1].p.temperature = 0.0f;
  cases[1].p.repetition_penalty = 1.3f;
  cases[1].p.frequency_penalty = 0.5f;
  cases[2] = {"temperature", {}};
  cases[2].p.temperature = 0.8f;
  cases[3] = {"top_k", {}};
  cases[3].p.top_k = 40;
  cases[4] = {"top_p", {}};
  cases[4].p.top_p = 0.9f;
  cases[4].p.temperature = 0.6f;
  cases[5] = {"min_p + top_k + penalties", {}};
  cases[5].p.min_p = 0.05f;
  cases[5].p.top_k = 200;
  cases[5].p.presence_penalty = 0.7f;
  cases[5].p.repetition_penalty = 0.9f;
  cases[6] = {"logprobs", {}};
  cases[6].p.logprobs = true;
  cases[6].p.n_top_logprobs = 5;
  // min_tokens: the 4 generated tokens are fewer than 6, so the stop ids
  // (the greedy choice among them) cannot be sampled; with 4 they can.
  int32_t top = 0;  // the most likely finite entry
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isfinite(logits[i]) && logits[i] > logits[static_cast<size_t>(top)]) {
      top = static_cast<int32_t>(i);
    }
  }
  cases[7] = {"greedy + min_tokens", {}};
  cases[7].p.temperature = 0.0f;
  cases[7].p.min_tokens = 6;
  cases[7].p.min_tokens_ids = {top, 3};
  cases[8] = {"min_tokens + penalties", {}};
  cases[8].p.temperature = 0.7f;
  cases[8].p.min_tokens = 6;
  cases[8].p.min_tokens_ids = {top, 17, 999};
  cases[8].p.frequency_penalty = 0.4f;
  cases[9] = {"min_tokens reached", {}};
  cases[9].p.temperature = 0.0f;
  cases[9].p.min_tokens = 4;
  cases[9].p.min_tokens_ids = {top};
  std::mt19937_64 draws(13);
  for (const Case& c : cases) {
    auto dist = sampling_distribution(c.p, logits, prompt, generated);
    ASSERT_TRUE(dist.ok()) << dist.status().message();
    if (masks_stop_ids(c.p, generated.size())) {
      for (int32_t id : c.p.min_tokens_ids) EXPECT_EQ((*dist)[static_cast<size_t>(id)], 0.0);
    } else if (!c.p.min_tokens_ids.empty()) {
      EXPECT_EQ((*dist)[static_cast<size_t>(top)], 1.0) << c.name << ": greedy, unmasked";
    }
    int differ = 0;
    for (int i = 0; i < 300; ++i) {
      const uint64_t draw = draws();
      auto want = sample_row(c.p, logits, prompt, generated, draw);
      auto got = ops_->sample(c.p, logits, prompt, generated, draw);
      ASSERT_TRUE(want.ok() && got.ok()) << c.name;
      ASSERT_GE(got->id, 0) << c.name;
      EXPECT_GT((*dist)[static_cast<size_t>(got->id)], 0.0) << c.name << ": a dropped token";
      differ += got->id != want->id;
      if (c.p.logprobs) {
        EXPECT_NEAR(got->logprob, want->logprob, 1e-4) << c.name;
        ASSERT_EQ(got->top.size(), want->top.size()) << c.name;
        for (size_t j = 0; j < want->top.size(); ++j) {
          EXPECT_EQ(got->top[j].id, want->top[j].id) << c.name;
          EXPECT_NEAR(got->top[j].logprob, want->top[j].logprob, 1e-4) << c.name;
        }
      }
    }
    EXPECT_LE(differ, 3) << c.name << ": ids differ from the reference's on " << differ
                         << " of 300 draws";
  }
}

INSTANTIATE_TEST_SUITE_P(Built, BackendOpsTest, ::testing::ValuesIn(built_backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace r1::kernels::testing
