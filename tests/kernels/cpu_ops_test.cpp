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
       {Shape{1, 37, 61}, Shape{3, 129, 67}, Shape{7, 5, 257}, Shape{1, 1, 1}, Shape{5, 64, 128},
        Shape{7, 67, 2048}}) {  // 2048: bf16 prefill's row blocks of 64, and 3 rows left
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

// The CPU cache has its own layout (K transposed within a block), so a test
// cache is written by cpu::kv_store from the same per-slot rows that form
// the reference's cache: `k` and `v` are [n_slots, n_kv, d], which is both
// the reference layout and kv_store's token-major input.
struct CpuCaches {
  std::vector<float> k, v;       // f32 cache
  std::vector<uint16_t> kb, vb;  // bf16 cache
  std::vector<float> kr, vr;     // the bf16 cache's values, in the reference layout
  KvLayerView f32;
  KvLayerViewBf16 bf16;
  KvLayerView rounded;
};

CpuCaches cpu_caches(std::vector<float>& k, std::vector<float>& v, int32_t n_blocks,
                     int32_t block_size, int32_t n_kv, int32_t d) {
  CpuCaches c;
  c.k.assign(k.size(), NAN);
  c.v.assign(v.size(), NAN);
  c.kb.assign(k.size(), 0);
  c.vb.assign(v.size(), 0);
  c.kr.resize(k.size());
  c.vr.resize(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    c.kr[i] = bf16_to_f32(f32_to_bf16(k[i]));
    c.vr[i] = bf16_to_f32(f32_to_bf16(v[i]));
  }
  c.f32 = {c.k.data(), c.v.data(), n_blocks, block_size, n_kv, d};
  c.bf16 = {c.kb.data(), c.vb.data(), n_blocks, block_size, n_kv, d};
  c.rounded = {c.kr.data(), c.vr.data(), n_blocks, block_size, n_kv, d};
  std::vector<int32_t> slots(static_cast<size_t>(n_blocks * block_size));
  std::iota(slots.begin(), slots.end(), 0);
  cpu::kv_store(c.f32, k.data(), v.data(), slots.data(), static_cast<int64_t>(slots.size()));
  cpu::kv_store(c.bf16, k.data(), v.data(), slots.data(), static_cast<int64_t>(slots.size()));
  return c;
}

// A batch of three sequences at different lengths whose blocks are scattered
// through the cache; some tokens are a prefill chunk on top of cached blocks,
// one is a single decode token. Head sizes below, at and above the vector
// widths (with tails), 64 (SmolLM2: 3 query heads per kv head), 128 and 256
// with groups of 6, 5 (odd), 3 and 1 query heads per kv head; blocks of 4
// (chunks shorter than 16 positions), 16 (the server's) and 32 (two chunks
// per block), contexts over several chunks with a short last one; on every
// ISA path, with an f32 and a bf16 cache.
TEST_P(CpuOpsTest, PagedAttentionMatchesReferenceOnMixedBatch) {
  for (int32_t block_size : {4, 16, 32}) {
    for (auto [n_heads, n_kv, d] :
         {std::tuple{6, 2, 16}, std::tuple{4, 4, 9}, std::tuple{5, 1, 33}, std::tuple{12, 2, 128},
          std::tuple{4, 2, 40}, std::tuple{10, 2, 128}, std::tuple{12, 12, 128},
          std::tuple{4, 2, 256}, std::tuple{9, 3, 64}, std::tuple{14, 2, 128}}) {
      const int32_t n_blocks = 160 / block_size;
      auto k = random_floats(static_cast<size_t>(n_blocks * block_size * n_kv * d), 51, -2.f, 2.f);
      auto v = random_floats(k.size(), 52);
      const KvLayerView kv{k.data(), v.data(), n_blocks, block_size, n_kv, d};
      const CpuCaches c = cpu_caches(k, v, n_blocks, block_size, n_kv, d);
      // Sequence lengths 13, 1 and 50; this step computes the last 5, 1 and 1 tokens.
      const int32_t max_blocks = 16;
      std::vector<int32_t> tables(3 * max_blocks, -1);
      std::vector<int32_t> perm(n_blocks);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), std::mt19937(5));
      int used = 0;
      for (int s = 0; s < 3; ++s) {
        int len = std::vector<int>{13, 1, 50}[s];
        for (int b = 0; b < (len + block_size - 1) / block_size; ++b)
          tables[s * max_blocks + b] = perm[used++];
      }
      std::vector<int32_t> qs = {0, 5, 6, 7};
      std::vector<int32_t> pos = {8, 9, 10, 11, 12, 0, 49};
      AttentionBatch batch{3, qs.data(), pos.data(), tables.data(), max_blocks};
      auto q = random_floats(static_cast<size_t>(7 * n_heads * d), 53, -2.f, 2.f);
      std::vector<float> want(q.size()), want16(q.size()), got(q.size());
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      reference::paged_attention(q.data(), kv, batch, n_heads, scale, want.data());
      // The bf16 cache's answer is the reference's over the values it
      // stores (each rounded to the nearest bf16).
      reference::paged_attention(q.data(), c.rounded, batch, n_heads, scale, want16.data());
      const std::string what =
          " d " + std::to_string(d) + " block " + std::to_string(block_size) + " ";
      // Copies: clang before 16 cannot capture structured bindings.
      testing::for_each_isa([&, n_heads = n_heads](const std::string& isa) {
        std::fill(got.begin(), got.end(), NAN);
        cpu::paged_attention(q.data(), c.f32, batch, n_heads, scale, got.data(), pool_);
        expect_close(got, want, 2e-6f, 1e-5f, "paged_attention" + what + isa);
        std::fill(got.begin(), got.end(), NAN);
        cpu::paged_attention(q.data(), c.bf16, batch, n_heads, scale, got.data(), pool_);
        expect_close(got, want16, 2e-6f, 1e-5f, "paged_attention bf16" + what + isa);
      });
    }
  }
}

TEST_P(CpuOpsTest, PagedAttentionPropagatesANanInTheCache) {
  // A NaN in one cached K row must reach the output on every path (not be
  // flushed to a zero weight), so corrupt state shows instead of hiding.
  // Positions 5 (a full chunk) and 20 (the short last chunk) in turn.
  const int32_t block_size = 16, n_blocks = 2, n_kv = 1, d = 128, n_heads = 2;
  for (int at : {5, 20}) {
    auto k = random_floats(static_cast<size_t>(n_blocks * block_size * n_kv * d), 71, -2.f, 2.f);
    auto v = random_floats(k.size(), 72);
    k[static_cast<size_t>(at * d + 5)] = NAN;
    const CpuCaches c = cpu_caches(k, v, n_blocks, block_size, n_kv, d);
    std::vector<int32_t> tables = {0, 1}, qs = {0, 1}, pos = {25};
    AttentionBatch batch{1, qs.data(), pos.data(), tables.data(), 2};
    auto q = random_floats(static_cast<size_t>(n_heads * d), 73, -2.f, 2.f);
    std::vector<float> got(q.size());
    testing::for_each_isa([&](const std::string& isa) {
      std::fill(got.begin(), got.end(), 0.0f);
      cpu::paged_attention(q.data(), c.f32, batch, n_heads, 0.1f, got.data(), pool_);
      for (float f : got) ASSERT_TRUE(std::isnan(f)) << isa << " at " << at;
      std::fill(got.begin(), got.end(), 0.0f);
      cpu::paged_attention(q.data(), c.bf16, batch, n_heads, 0.1f, got.data(), pool_);
      for (float f : got) ASSERT_TRUE(std::isnan(f)) << "bf16 " << isa << " at " << at;
    });
  }
}

// kv_store puts every value of a token where the layout says: V at
// [slot, head, dim], K at [block, head, dim, offset], bf16 rounded to
// nearest even; slots it was not given stay untouched.
TEST_P(CpuOpsTest, KvStoreWritesSlots) {
  const int32_t block_size = 3, n_blocks = 4, n_kv = 2, d = 5;
  const size_t cache = static_cast<size_t>(n_blocks * block_size * n_kv * d);
  auto k = random_floats(3 * n_kv * d, 61), v = random_floats(3 * n_kv * d, 62);
  std::vector<int32_t> slots = {11, 0, 5};
  std::vector<float> kc(cache, -7.f), vc(cache, -7.f);
  std::vector<uint16_t> kb(cache, 7), vb(cache, 7);
  cpu::kv_store(KvLayerView{kc.data(), vc.data(), n_blocks, block_size, n_kv, d}, k.data(),
                v.data(), slots.data(), 3);
  cpu::kv_store(KvLayerViewBf16{kb.data(), vb.data(), n_blocks, block_size, n_kv, d}, k.data(),
                v.data(), slots.data(), 3);
  std::vector<bool> k_written(cache, false), v_written(cache, false);
  for (int t = 0; t < 3; ++t) {
    const int slot = slots[t], block = slot / block_size, off = slot % block_size;
    for (int h = 0; h < n_kv; ++h) {
      for (int j = 0; j < d; ++j) {
        const float kx = k[(t * n_kv + h) * d + j], vx = v[(t * n_kv + h) * d + j];
        const size_t ki = static_cast<size_t>(((block * n_kv + h) * d + j) * block_size + off);
        const size_t vi = static_cast<size_t>((slot * n_kv + h) * d + j);
        ASSERT_EQ(kc[ki], kx) << t << " " << h << " " << j;
        ASSERT_EQ(vc[vi], vx) << t << " " << h << " " << j;
        ASSERT_EQ(kb[ki], f32_to_bf16(kx));
        ASSERT_EQ(vb[vi], f32_to_bf16(vx));
        k_written[ki] = v_written[vi] = true;
      }
    }
  }
  for (size_t i = 0; i < cache; ++i) {
    if (!k_written[i]) {
      ASSERT_TRUE(kc[i] == -7.f && kb[i] == 7) << i;
    }
    if (!v_written[i]) {
      ASSERT_TRUE(vc[i] == -7.f && vb[i] == 7) << i;
    }
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
