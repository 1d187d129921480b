// Every CPU kernel against the reference on seeded random inputs with odd
// sizes (not multiples of any vector width), several thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernel_test_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/reference_ops.h"

namespace r1::kernels {
namespace {

using testing::expect_close;
using testing::random_floats;
using testing::random_matrix;

class CpuOpsTest : public ::testing::TestWithParam<int> {
 protected:
  ThreadPool pool_{GetParam()};
};

TEST_P(CpuOpsTest, MatmulMatchesReferenceForEveryWeightDtype) {
  struct Shape {
    int64_t n_tokens, rows, cols;
  };
  for (Shape s :
       {Shape{1, 37, 61}, Shape{3, 129, 67}, Shape{7, 5, 257}, Shape{1, 1, 1}, Shape{5, 64, 128}}) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      auto w = random_matrix(s.rows, s.cols, dt, 11 + s.rows);
      auto x = random_floats(static_cast<size_t>(s.n_tokens * s.cols), 5 + s.cols);
      auto bias = random_floats(static_cast<size_t>(s.rows), 3);
      std::vector<float> want(static_cast<size_t>(s.n_tokens * s.rows)), got(want.size());
      for (const float* b : std::vector<const float*>{nullptr, bias.data()}) {
        reference::matmul(x.data(), w.view, b, s.n_tokens, want.data());
        testing::for_each_isa([&](const std::string& isa) {
          cpu::matmul(x.data(), w.view, b, s.n_tokens, got.data(), pool_);
          // f32 accumulation of up to 257 products of magnitude <= 1.
          expect_close(got, want, 2e-5f * static_cast<float>(s.cols), 1e-5f,
                       isa + " matmul " + std::string(dtype_name(dt)) + " " +
                           std::to_string(s.rows) + "x" + std::to_string(s.cols));
        });
      }
    }
  }
}

TEST_P(CpuOpsTest, EmbeddingGathersRows) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    auto w = random_matrix(50, 33, dt, 9);
    std::vector<int32_t> ids = {49, 0, 7, 7, 23};
    std::vector<float> want(ids.size() * 33), got(want.size());
    reference::embedding(w.view, ids.data(), 5, want.data());
    cpu::embedding(w.view, ids.data(), 5, got.data(), pool_);
    expect_close(got, want, 0.0f, 0.0f, "embedding");
  }
}

TEST_P(CpuOpsTest, RmsnormMatchesReference) {
  for (int64_t dim : {1, 17, 64, 1537}) {
    auto x = random_floats(static_cast<size_t>(5 * dim), 21, -3.f, 3.f);
    auto w = random_floats(static_cast<size_t>(dim), 22);
    std::vector<float> want(x.size()), got(x.size());
    reference::rmsnorm(x.data(), w.data(), 1e-6f, 5, dim, want.data());
    cpu::rmsnorm(x.data(), w.data(), 1e-6f, 5, dim, got.data(), pool_);
    expect_close(got, want, 1e-6f, 1e-5f, "rmsnorm dim " + std::to_string(dim));
  }
}

TEST_P(CpuOpsTest, RopeMatchesReferenceAtLargePositions) {
  const int64_t n_tokens = 6, n_heads = 3, head_dim = 18;
  std::vector<float> inv(head_dim / 2);
  for (int64_t i = 0; i < head_dim / 2; ++i) inv[i] = std::pow(10000.0f, -2.0f * i / head_dim);
  std::vector<int32_t> pos = {0, 1, 17, 4095, 65537, 131071};
  auto x = random_floats(static_cast<size_t>(n_tokens * n_heads * head_dim), 31);
  auto want = x, got = x;
  reference::rope(want.data(), pos.data(), inv.data(), n_tokens, n_heads, head_dim);
  cpu::rope(got.data(), pos.data(), inv.data(), n_tokens, n_heads, head_dim, pool_);
  expect_close(got, want, 1e-6f, 1e-5f, "rope");
}

TEST_P(CpuOpsTest, SiluMulMatchesReference) {
  const int64_t n_tokens = 3, n = 101;
  auto gu = random_floats(static_cast<size_t>(n_tokens * 2 * n), 41, -8.f, 8.f);
  std::vector<float> want(static_cast<size_t>(n_tokens * n)), got(want.size());
  reference::silu_mul(gu.data(), gu.data() + n, n_tokens, n, 2 * n, n, want.data());
  cpu::silu_mul(gu.data(), gu.data() + n, n_tokens, n, 2 * n, n, got.data(), pool_);
  expect_close(got, want, 1e-6f, 1e-5f, "silu_mul");
}

// A batch of three sequences at different lengths whose blocks are scattered
// through the cache; some tokens are a prefill chunk on top of cached blocks,
// one is a single decode token. Head sizes below, at and above the vector
// widths (with tails), 64 (SmolLM2: 3 query heads per kv head), 128 and 256
// with groups of 6, 5 (odd) and 1 query heads per kv head, and contexts over one 16-position chunk,
// on every ISA path.
TEST_P(CpuOpsTest, PagedAttentionMatchesReferenceOnMixedBatch) {
  for (auto [n_heads, n_kv, d] :
       {std::tuple{6, 2, 16}, std::tuple{4, 4, 9}, std::tuple{5, 1, 33}, std::tuple{12, 2, 128},
        std::tuple{4, 2, 40}, std::tuple{10, 2, 128}, std::tuple{12, 12, 128},
        std::tuple{4, 2, 256}, std::tuple{9, 3, 64}}) {
    const int32_t block_size = 4, n_blocks = 40;
    auto k = random_floats(static_cast<size_t>(n_blocks * block_size * n_kv * d), 51, -2.f, 2.f);
    auto v = random_floats(k.size(), 52);
    KvLayerView kv{k.data(), v.data(), n_blocks, block_size, n_kv, d};
    // Sequence lengths 13, 1 and 30; this step computes the last 5, 1 and 1 tokens.
    const int32_t max_blocks = 8;
    std::vector<int32_t> tables(3 * max_blocks, -1);
    std::vector<int32_t> perm(n_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(5));
    int used = 0;
    for (int s = 0; s < 3; ++s) {
      int len = std::vector<int>{13, 1, 30}[s];
      for (int b = 0; b < (len + block_size - 1) / block_size; ++b)
        tables[s * max_blocks + b] = perm[used++];
    }
    std::vector<int32_t> qs = {0, 5, 6, 7};
    std::vector<int32_t> pos = {8, 9, 10, 11, 12, 0, 29};
    AttentionBatch batch{3, qs.data(), pos.data(), tables.data(), max_blocks};
    auto q = random_floats(static_cast<size_t>(7 * n_heads * d), 53, -2.f, 2.f);
    std::vector<float> want(q.size()), got(q.size());
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    reference::paged_attention(q.data(), kv, batch, n_heads, scale, want.data());
    // A bf16 cache of the same values: its answer is the reference's over
    // the values it stores (each rounded to the nearest bf16).
    std::vector<uint16_t> kb(k.size()), vb(v.size());
    std::vector<float> kr(k.size()), vr(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
      kb[i] = f32_to_bf16(k[i]);
      vb[i] = f32_to_bf16(v[i]);
      kr[i] = bf16_to_f32(kb[i]);
      vr[i] = bf16_to_f32(vb[i]);
    }
    const KvLayerViewBf16 kv16{kb.data(), vb.data(), n_blocks, block_size, n_kv, d};
    std::vector<float> want16(q.size());
    reference::paged_attention(q.data(), {kr.data(), vr.data(), n_blocks, block_size, n_kv, d},
                               batch, n_heads, scale, want16.data());
    // Copies: clang before 16 cannot capture structured bindings.
    testing::for_each_isa([&, n_heads = n_heads, d = d](const std::string& isa) {
      std::fill(got.begin(), got.end(), NAN);
      cpu::paged_attention(q.data(), kv, batch, n_heads, scale, got.data(), pool_);
      expect_close(got, want, 2e-6f, 1e-5f, "paged_attention " + isa + " d " + std::to_string(d));
      std::fill(got.begin(), got.end(), NAN);
      cpu::paged_attention(q.data(), kv16, batch, n_heads, scale, got.data(), pool_);
      expect_close(got, want16, 2e-6f, 1e-5f,
                   "paged_attention bf16 " + isa + " d " + std::to_string(d));
    });
  }
}

TEST_P(CpuOpsTest, PagedAttentionPropagatesANanInTheCache) {
  // A NaN in one cached K row must reach the output on every path (not be
  // flushed to a zero weight), so corrupt state shows instead of hiding.
  const int32_t block_size = 16, n_blocks = 2, n_kv = 1, d = 128, n_heads = 2;
  auto k = random_floats(static_cast<size_t>(n_blocks * block_size * n_kv * d), 71, -2.f, 2.f);
  auto v = random_floats(k.size(), 72);
  k[static_cast<size_t>(20 * d + 5)] = NAN;  // position 20, in the second chunk
  KvLayerView kv{k.data(), v.data(), n_blocks, block_size, n_kv, d};
  std::vector<int32_t> tables = {0, 1}, qs = {0, 1}, pos = {25};
  AttentionBatch batch{1, qs.data(), pos.data(), tables.data(), 2};
  auto q = random_floats(static_cast<size_t>(n_heads * d), 73, -2.f, 2.f);
  std::vector<float> got(q.size());
  std::vector<uint16_t> kb(k.size()), vb(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    kb[i] = f32_to_bf16(k[i]);
    vb[i] = f32_to_bf16(v[i]);
  }
  const KvLayerViewBf16 kv16{kb.data(), vb.data(), n_blocks, block_size, n_kv, d};
  testing::for_each_isa([&](const std::string& isa) {
    std::fill(got.begin(), got.end(), 0.0f);
    cpu::paged_attention(q.data(), kv, batch, n_heads, 0.1f, got.data(), pool_);
    for (float f : got) ASSERT_TRUE(std::isnan(f)) << isa;
    std::fill(got.begin(), got.end(), 0.0f);
    cpu::paged_attention(q.data(), kv16, batch, n_heads, 0.1f, got.data(), pool_);
    for (float f : got) ASSERT_TRUE(std::isnan(f)) << "bf16 " << isa;
  });
}

TEST_P(CpuOpsTest, KvStoreWritesSlots) {
  const int32_t block_size = 3, n_blocks = 4, n_kv = 2, d = 5;
  std::vector<float> k1(n_blocks * block_size * n_kv * d, 0.f), v1(k1.size(), 0.f);
  auto k2 = k1, v2 = v1;
  auto k = random_floats(3 * n_kv * d, 61), v = random_floats(3 * n_kv * d, 62);
  std::vector<int32_t> slots = {11, 0, 5};
  reference::kv_store({k1.data(), v1.data(), n_blocks, block_size, n_kv, d}, k.data(), v.data(),
                      slots.data(), 3);
  cpu::kv_store({k2.data(), v2.data(), n_blocks, block_size, n_kv, d}, k.data(), v.data(),
                slots.data(), 3);
  expect_close(k2, k1, 0, 0, "k");
  expect_close(v2, v1, 0, 0, "v");
  EXPECT_EQ(k1[11 * n_kv * d + 3], k[3]);
  // A bf16 cache: the same slots, each value rounded to nearest even.
  std::vector<uint16_t> kb(k1.size(), 0), vb(k1.size(), 0);
  cpu::kv_store(KvLayerViewBf16{kb.data(), vb.data(), n_blocks, block_size, n_kv, d}, k.data(),
                v.data(), slots.data(), 3);
  for (size_t i = 0; i < k1.size(); ++i) {
    ASSERT_EQ(kb[i], f32_to_bf16(k1[i])) << i;
    ASSERT_EQ(vb[i], f32_to_bf16(v1[i])) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuOpsTest, ::testing::Values(1, 2, 3));

// Where a run must cover a path (the AVX-512 run under an emulator sets
// R1SERVE_EXPECT_ISA=avx512 or avx512-vnni), a CPU that cannot take it
// fails here instead of leaving every avx512 case skipped.
TEST(IsaTest, TheExpectedPathIsAvailable) {
  const char* expect = std::getenv("R1SERVE_EXPECT_ISA");
  if (expect == nullptr || *expect == '\0') GTEST_SKIP() << "R1SERVE_EXPECT_ISA not set";
  const std::string want = expect;
  const cpu::Isa before = cpu::active_isa();
  if (want == "avx512" || want == "avx512-vnni") {
    ASSERT_TRUE(cpu::set_active_isa(cpu::Isa::kAvx512));
    EXPECT_EQ(cpu::vnni_kernels(), want == "avx512-vnni");
  } else if (want == "avx2") {
    EXPECT_TRUE(cpu::set_active_isa(cpu::Isa::kAvx2));
  } else {
    FAIL() << "R1SERVE_EXPECT_ISA=" << want << ": expected avx512, avx512-vnni or avx2";
  }
  cpu::set_active_isa(before);
}

// The flags the kernel lists in /proc/cpuinfo: its own reading of cpuid,
// independent of the kernels' detection.
std::vector<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::vector<std::string> flags;
    for (std::string w; words >> w;) flags.push_back(w);
    return flags;
  }
  return {};
}

// Every run proves which path the kernels take: the best the CPU runs by
// /proc/cpuinfo (unless R1SERVE_ISA forces one), and on an AVX-512 CPU the
// avx512 path with VNNI exactly when the CPU has it. So a build or a
// detection that leaves a capable CPU on a slower path fails here, on every
// machine, instead of skipping.
TEST(IsaTest, TheBestPathTheCpuRunsIsTaken) {
  const std::vector<std::string> flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags to compare with";
  const auto has = [&](const char* f) {
    return std::find(flags.begin(), flags.end(), f) != flags.end();
  };
  const bool avx2 = has("avx2") && has("fma") && has("f16c");
  const bool avx512 = avx2 && has("avx512f") && has("avx512bw") && has("avx512vl");
  EXPECT_EQ(cpu::isa_supported(cpu::Isa::kAvx2), avx2);
  EXPECT_EQ(cpu::isa_supported(cpu::Isa::kAvx512), avx512);
  const char* forced = std::getenv("R1SERVE_ISA");
  if (forced == nullptr || *forced == '\0') {
    EXPECT_EQ(cpu::active_isa(), avx512 ? cpu::Isa::kAvx512
                                 : avx2 ? cpu::Isa::kAvx2
                                        : cpu::Isa::kScalar)
        << "took " << cpu::isa_name(cpu::active_isa());
  }
  if (avx512) {
    const cpu::Isa before = cpu::active_isa();
    ASSERT_TRUE(cpu::set_active_isa(cpu::Isa::kAvx512));
    EXPECT_EQ(cpu::vnni_kernels(), has("avx512_vnni"));
    cpu::set_active_isa(before);
  }
}

}  // namespace
}  // namespace r1::kernels
