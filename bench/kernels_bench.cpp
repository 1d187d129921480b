// Matrix-vector (decode) and matrix-matrix (prefill) products over the 1.5b
// shape's lm_head (151936 x 1536: 233 MB in int8, far beyond any L3, so the
// weights really stream from memory) for every weight dtype and ISA path,
// reporting the weight bytes streamed per second (bytes_per_second) to read
// against the machine's memory bandwidth. The `hot_` variants use the
// first 512 rows only (384 KB of int4, 768 KB of int8, 1.5 MB of bf16: cache
// resident), so they show the kernel's arithmetic ceiling rather than
// DRAM's. decode_attention reads a decode step's KV cache.
//
//   build/release/bench/kernels_bench --benchmark_filter=decode
//   R1SERVE_ISA=scalar build/release/bench/kernels_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/quant.h"

namespace {

using namespace r1;
using namespace r1::kernels;

constexpr int64_t kRows = 151936, kCols = 1536;

struct Weights {
  std::vector<uint16_t> bf16;
  OwnedMatrix q8, q4;
  MatrixView view(DType t, int64_t rows) const {
    MatrixView v = t == DType::kQ8   ? q8.view()
                   : t == DType::kQ4 ? q4.view()
                                     : MatrixView{bf16.data(), DType::kBF16, kRows, kCols};
    v.rows = rows;  // row-major: the first `rows` rows are a valid matrix
    return v;
  }
};

const Weights& weights() {
  static const Weights w = [] {
    Weights out;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-0.05f, 0.05f);
    out.bf16.resize(static_cast<size_t>(kRows * kCols));
    for (auto& v : out.bf16) v = f32_to_bf16(d(rng));
    ThreadPool pool(2);
    const MatrixView src{out.bf16.data(), DType::kBF16, kRows, kCols};
    out.q8 = quantize_matrix(src, DType::kQ8, 0, pool);
    out.q4 = quantize_matrix(src, DType::kQ4, 32, pool);
    return out;
  }();
  return w;
}

void run(benchmark::State& state, DType dtype, int64_t n_tokens, int64_t rows = kRows) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const MatrixView w = weights().view(dtype, rows);
  std::vector<float> x(static_cast<size_t>(n_tokens * kCols), 0.25f);
  std::vector<float> y(static_cast<size_t>(n_tokens * rows));
  for (auto _ : state) {
    cpu::matmul(x.data(), w, nullptr, n_tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * matrix_bytes(w));
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * n_tokens), benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n_tokens * rows * kCols) / 1e9,
                         benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(dtype)) + " " +
                 std::string(cpu::isa_name(cpu::active_isa())));
}

void decode_bf16(benchmark::State& s) {
  run(s, DType::kBF16, 1);
}
void decode_int8(benchmark::State& s) {
  run(s, DType::kQ8, 1);
}
void decode_int4(benchmark::State& s) {
  run(s, DType::kQ4, 1);
}
void prefill64_bf16(benchmark::State& s) {
  run(s, DType::kBF16, 64);
}
void prefill64_int8(benchmark::State& s) {
  run(s, DType::kQ8, 64);
}
void prefill64_int4(benchmark::State& s) {
  run(s, DType::kQ4, 64);
}

constexpr int64_t kHotRows = 512;

// Batched products with the weights in L2 (256 rows, 384 KB of int8; 128
// rows of bf16): the kernels' arithmetic rate, to set against `bench
// --offline`'s peaks. Args: threads, tokens.
void hot_tokens_int8(benchmark::State& s) {
  run(s, DType::kQ8, s.range(1), kHotRows / 2);
}
void hot_tokens_bf16(benchmark::State& s) {
  run(s, DType::kBF16, s.range(1), kHotRows / 4);
}

void hot_decode_bf16(benchmark::State& s) {
  run(s, DType::kBF16, 1, kHotRows);
}
void hot_decode_int8(benchmark::State& s) {
  run(s, DType::kQ8, 1, kHotRows);
}
void hot_decode_int4(benchmark::State& s) {
  run(s, DType::kQ4, 1, kHotRows);
}

float from_f32(float x, float) {
  return x;
}
uint16_t from_f32(float x, uint16_t) {
  return f32_to_bf16(x);
}

// Decode attention for one token over every layer of the 1.5b shape (28
// layers, 12 query heads, 2 kv heads, head size 128, KV cache in blocks of
// 16, f32 or bf16) at a context of state.range(0) positions, 2 threads;
// reports the KV bytes read per second (f32: 28 MB per token at 512
// positions, 229 MB at 4096; bf16 half).
template <typename T>
void decode_attention_of(benchmark::State& state) {
  constexpr int64_t kLayers = 28, kHeads = 12, kKv = 2, kDim = 128, kBlock = 16;
  const int64_t ctx = state.range(0);
  const int32_t n_blocks = static_cast<int32_t>((ctx + kBlock - 1) / kBlock);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<std::vector<T>> k(kLayers), v(kLayers);
  for (int64_t l = 0; l < kLayers; ++l) {
    k[l].resize(static_cast<size_t>(n_blocks * kBlock * kKv * kDim));
    v[l].resize(k[l].size());
    for (auto& f : k[l]) f = from_f32(d(rng), T{});
    for (auto& f : v[l]) f = from_f32(d(rng), T{});
  }
  std::vector<float> q(kHeads * kDim), out(q.size());
  for (auto& f : q) f = d(rng);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int32_t b = 0; b < n_blocks; ++b) table[static_cast<size_t>(b)] = b;
  const int32_t query_start[2] = {0, 1};
  const int32_t position = static_cast<int32_t>(ctx - 1);
  const AttentionBatch batch{1, query_start, &position, table.data(), n_blocks};
  ThreadPool pool(2);
  for (auto _ : state) {
    for (int64_t l = 0; l < kLayers; ++l) {
      const KvLayerViewOf<T> kv{k[l].data(), v[l].data(), n_blocks, kBlock, kKv, kDim};
      cpu::paged_attention(q.data(), kv, batch, kHeads, 0.088f, out.data(), pool);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kLayers * ctx * 2 * kKv * kDim *
                          static_cast<int64_t>(sizeof(T)));
  state.SetLabel(std::string(cpu::isa_name(cpu::active_isa())));
}

void decode_attention(benchmark::State& state) {
  decode_attention_of<float>(state);
}
void decode_attention_bf16(benchmark::State& state) {
  decode_attention_of<uint16_t>(state);
}

// Prefill attention: one prompt of state.range(0) tokens attending
// causally over itself, one layer of SmolLM2-135M's shape (9 query heads,
// 3 kv heads, head size 64), 2 threads; reports prompt tokens per second.
void prefill_attention(benchmark::State& state) {
  constexpr int64_t kHeads = 9, kKv = 3, kDim = 64, kBlock = 16;
  const int32_t n = static_cast<int32_t>(state.range(0));
  const int32_t n_blocks = (n + kBlock - 1) / kBlock;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(n_blocks * kBlock * kKv * kDim)), v(k.size());
  for (auto& f : k) f = d(rng);
  for (auto& f : v) f = d(rng);
  std::vector<float> q(static_cast<size_t>(n * kHeads * kDim)), out(q.size());
  for (auto& f : q) f = d(rng);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks)), positions(static_cast<size_t>(n));
  for (int32_t b = 0; b < n_blocks; ++b) table[static_cast<size_t>(b)] = b;
  for (int32_t t = 0; t < n; ++t) positions[static_cast<size_t>(t)] = t;
  const int32_t query_start[2] = {0, n};
  const AttentionBatch batch{1, query_start, positions.data(), table.data(), n_blocks};
  const KvLayerView kv{k.data(), v.data(), n_blocks, kBlock, kKv, kDim};
  ThreadPool pool(2);
  for (auto _ : state) {
    cpu::paged_attention(q.data(), kv, batch, kHeads, 0.125f, out.data(), pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(std::string(cpu::isa_name(cpu::active_isa())));
}

BENCHMARK(decode_attention)->Arg(512)->Arg(4096)->UseRealTime();
BENCHMARK(decode_attention_bf16)->Arg(512)->Arg(4096)->UseRealTime();
BENCHMARK(prefill_attention)->Arg(512)->UseRealTime();
BENCHMARK(decode_bf16)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(decode_int8)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(decode_int4)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(prefill64_bf16)->Arg(2)->UseRealTime();
BENCHMARK(prefill64_int8)->Arg(2)->UseRealTime();
BENCHMARK(prefill64_int4)->Arg(2)->UseRealTime();
BENCHMARK(hot_tokens_int8)->ArgsProduct({{1, 2}, {8, 32, 64}})->UseRealTime();
BENCHMARK(hot_tokens_bf16)->ArgsProduct({{1, 2}, {8, 64}})->UseRealTime();
BENCHMARK(hot_decode_bf16)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(hot_decode_int8)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(hot_decode_int4)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
