// The CUDA backend's kernels (kernels/cuda) behind BackendOps: host arrays in
// bf16 (as the backend holds activations and weights) to the device, one
// kernel or cuBLASLt call, results back. Unavailable, with the reason, when
// there is no usable device.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "backend_ops.h"
#include "core/dtype.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/sampling_row.h"

namespace r1::kernels::testing {
namespace {

namespace kcu = kernels::cuda;

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    ok(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T)), "cudaMalloc");
  }
  Dev(const std::vector<T>& host) : Dev(host.size()) {
    ok(cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> out(n);
    ok(cudaMemcpy(out.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return out;
  }
};

// The 16-bit activation format of the backend under test: bf16, or f16
// (the sm_75 path, which any GPU runs).
std::vector<uint16_t> to_act(const std::vector<float>& v, bool f16) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
  return out;
}
std::vector<float> from_act(const std::vector<uint16_t>& v, bool f16) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f16 ? f16_to_f32(v[i]) : bf16_to_f32(v[i]);
  return out;
}

class CudaOps final : public BackendOps {
 public:
  explicit CudaOps(bool f16) : f16_(f16) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      why_ = std::string("no CUDA device (") +
             (e != cudaSuccess ? cudaGetErrorString(e) : "none found") + ")";
      return;
    }
    auto g = kcu::Gemm::create(size_t{8} << 20);
    if (!g.ok()) {
      why_ = g.status().message();
      return;
    }
    gemm_ = std::move(g).value();
  }
  std::string name() const override { return f16_ ? "cuda_f16" : "cuda"; }
  std::string unavailable_reason() const override { return why_; }
  float round_input(float x) const override {
    return f16_ ? f16_to_f32(f32_to_f16(x)) : bf16_to_f32(f32_to_bf16(x));
  }
  // bf16 outputs: 2^-8 relative rounding per stored intermediate.
  float atol() const override { return 2e-2f; }
  float rtol() const override { return 2e-2f; }

  void embedding(const std::vector<float>& table, int64_t hidden, const std::vector<int32_t>& ids,
                 std::vector<float>& out) override {
    Dev<uint16_t> t(to_act(table, f16_));
    Dev<int32_t> i(ids);
    Dev<float> x(ids.size() * static_cast<size_t>(hidden));
    ok(kcu::embedding(t.p, hidden, i.p, static_cast<int64_t>(ids.size()), x.p, nullptr, f16_),
       "embedding");
    out = x.get();
  }
  void rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps, int64_t n,
               int64_t dim, std::vector<float>& out) override {
    Dev<float> dx(x), dw(w);
    Dev<uint16_t> o(static_cast<size_t>(n * dim));
    ok(kcu::rmsnorm(dx.p, dw.p, eps, n, dim, o.p, nullptr, f16_), "rmsnorm");
    out = from_act(o.get(), f16_);
  }
  void add_rmsnorm(std::vector<float>& x, const std::vector<float>& h, const std::vector<float>& w,
                   float eps, int64_t n, int64_t dim, std::vector<float>& out) override {
    Dev<float> dx(x), dw(w);
    Dev<uint16_t> dh(to_act(h, f16_)), o(static_cast<size_t>(n * dim));
    ok(kcu::add_rmsnorm(dx.p, dh.p, dw.p, eps, n, dim, o.p, nullptr, f16_), "add_rmsnorm");
    out = from_act(o.get(), f16_);
    x = dx.get();
  }
  void matmul(const std::vector<float>& x, const std::vector<float>& w, int64_t n, int64_t m,
              int64_t k, std::vector<float>& y) override {
    Dev<uint16_t> dx(to_act(x, f16_)), dw(to_act(w, f16_));
    Dev<float> dy(static_cast<size_t>(n * m));
    const Status s = gemm_->matmul(dx.p, dw.p, n, m, k, dy.p, /*f32_out=*/true, nullptr, f16_);
    if (!s.ok()) throw std::runtime_error(s.message());
    ok(cudaDeviceSynchronize(), "matmul");
    y = dy.get();
  }
  bool weight_only_matmul(bool fp8, const std::vector<uint8_t>& q, const std::vector<float>& scales,
                          const std::vector<float>& x, int64_t n, int64_t m, int64_t k,
                          std::vector<float>& y) override {
    const kcu::QuantKind kind = fp8 ? kcu::QuantKind::kFp8E4M3 : kcu::QuantKind::kInt8;
    Dev<uint8_t> dq(q);
    Dev<float> ds(scales);
    Dev<uint16_t> dx(to_act(x, f16_)), dy(static_cast<size_t>(n * m));
    if (n <= kcu::kQuantGemvMaxTokens) {
      ok(kcu::quant_gemv(kind, dq.p, ds.p, m, k, dx.p, n, dy.p, false, nullptr, f16_),
         "quant_gemv");
    } else {
      Dev<uint16_t> w(static_cast<size_t>(m * k));
      ok(kcu::dequantize(kind, dq.p, ds.p, m, k, w.p, nullptr, f16_), "dequantize");
      const Status s = gemm_->matmul(dx.p, w.p, n, m, k, dy.p, /*f32_out=*/false, nullptr, f16_);
      if (!s.ok()) throw std::runtime_error(s.message());
    }
    ok(cudaDeviceSynchronize(), "weight-only matmul");
    y = from_act(dy.get(), f16_);
    return true;
  }
  std::string fp8_matmul(const std::vector<float>& w, const std::vector<float>& x, int64_t n,
                         int64_t m, int64_t k, std::vector<float>& y) override {
    cudaDeviceProp prop{};
    ok(cudaGetDeviceProperties(&prop, 0), "device properties");
    if (prop.major * 10 + prop.minor < 89)
      return "sm_" + std::to_string(prop.major * 10 + prop.minor) + " has no fp8 tensor cores";
    float amax = 0.0f;
    for (float v : w) amax = std::max(amax, std::fabs(v));
    std::vector<uint8_t> q(w.size());
    std::vector<float> scales(static_cast<size_t>(m));
    kcu::quantize_rows(kcu::QuantKind::kFp8E4M3, w.data(), m, k, q.data(), scales.data(), amax);
    Dev<uint8_t> dq(q), xq(x.size());
    Dev<float> ds(scales), scalars(2);
    Dev<uint16_t> dx(to_act(x, f16_)), dy(static_cast<size_t>(n * m));
    ok(kcu::quantize_fp8_tensor(dx.p, n * k, xq.p, scalars.p, scalars.p + 1, nullptr, f16_),
       "quantize");
    const Status s =
        gemm_->matmul_fp8(xq.p, scalars.p, dq.p, ds.p, n, m, k, dy.p, false, nullptr, f16_);
    if (!s.ok()) throw std::runtime_error(s.message());
    ok(cudaDeviceSynchronize(), "fp8 matmul");
    y = from_act(dy.get(), f16_);
    return {};
  }
  std::string int8_gemm_matmul(const std::vector<uint8_t>& q, const std::vector<float>& scales,
                               const std::vector<float>& x, int64_t n, int64_t m, int64_t k,
                               std::vector<float>& y) override {
    Dev<uint8_t> dq(q);
    Dev<float> ds(scales), xs(static_cast<size_t>(n));
    Dev<int8_t> xq(x.size());
    Dev<int32_t> sums(static_cast<size_t>(n * m));
    Dev<uint16_t> dx(to_act(x, f16_));
    Dev<float> dy(static_cast<size_t>(n * m));  // f32 out, as qkv and lm_head take it
    ok(kcu::quantize_int8_rows(dx.p, n, k, xq.p, xs.p, nullptr, f16_), "quantize_int8_rows");
    const Status s =
        gemm_->matmul_int8(xq.p, reinterpret_cast<const int8_t*>(dq.p), n, m, k, sums.p, nullptr);
    if (!s.ok()) throw std::runtime_error(s.message());
    ok(kcu::scale_int32_product(sums.p, n, m, xs.p, ds.p, dy.p, true, nullptr, f16_),
       "scale_int32_product");
    ok(cudaDeviceSynchronize(), "int8 gemm");
    y = dy.get();
    return {};
  }
  void silu_mul(const std::vector<float>& gu, int64_t n, int64_t inter,
                std::vector<float>& out) override {
    Dev<uint16_t> d(to_act(gu, f16_)), o(static_cast<size_t>(n * inter));
    ok(kcu::silu_mul(d.p, n, inter, o.p, nullptr, f16_), "silu_mul");
    out = from_act(o.get(), f16_);
  }
  void attention_block(const AttentionCase& c, std::vector<float>& out) override {
    const int64_t n = c.n_tokens();
    const size_t cache = static_cast<size_t>(c.n_blocks) * c.block_size * c.n_kv_heads * c.head_dim;
    Dev<float> qkv(c.qkv);
    Dev<uint16_t> q(static_cast<size_t>(n * c.n_heads * c.head_dim)), kc(cache), vc(cache);
    Dev<float> bias(c.bias), inv(c.inv_freq);
    Dev<int32_t> pos(c.positions), slots(c.slots), tables(c.block_tables);
    std::vector<int32_t> seq(static_cast<size_t>(n));
    int max_pos = 0;
    for (size_t s = 0; s + 1 < c.query_start.size(); ++s) {
      for (int32_t t = c.query_start[s]; t < c.query_start[s + 1]; ++t) {
        seq[static_cast<size_t>(t)] = static_cast<int32_t>(s);
        max_pos = std::max(max_pos, c.positions[static_cast<size_t>(t)]);
      }
    }
    Dev<int32_t> token_seq(seq);
    ok(kcu::qkv_bias_rope_store(qkv.p, c.bias.empty() ? nullptr : bias.p, inv.p, pos.p, slots.p, n,
                                c.n_heads, c.n_kv_heads, c.head_dim, q.p, kc.p, vc.p, nullptr,
                                f16_),
       "qkv_bias_rope_store");
    kcu::AttentionArgs a;
    a.q = q.p;
    a.q_stride = c.n_heads * c.head_dim;
    a.k_cache = kc.p;
    a.v_cache = vc.p;
    a.block_size = c.block_size;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.n_tokens = n;
    a.token_seq = token_seq.p;
    a.positions = pos.p;
    a.block_tables = tables.p;
    a.max_blocks_per_seq = c.max_blocks;
    a.max_position = max_pos;
    // Room for every split the 601-token context gets (3 of kMinSplitKeys).
    Dev<float> ws(static_cast<size_t>(n * c.n_heads * 4 * (2 + c.head_dim)));
    a.workspace = ws.p;
    a.f16 = f16_;
    a.workspace_floats = static_cast<int64_t>(ws.n);
    Dev<uint16_t> o(static_cast<size_t>(n * c.n_heads * c.head_dim));
    a.out = o.p;
    ok(kcu::paged_attention(a, nullptr), "paged_attention");
    out = from_act(o.get(), f16_);
  }
  Result<SampledToken> sample(const SamplingParams& p, const std::vector<float>& logits,
                              const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& generated, uint64_t draw) override {
    const int64_t vocab = static_cast<int64_t>(logits.size());
    kcu::DeviceRow row = kcu::sampling_row(p, draw);
    row.n_prompt = static_cast<int32_t>(prompt.size());
    row.n_generated = static_cast<int32_t>(generated.size());
    std::vector<int32_t> ids = prompt;
    ids.insert(ids.end(), generated.begin(), generated.end());
    Dev<float> l(logits), w(logits.size());
    Dev<uint32_t> flags(std::vector<uint32_t>(logits.size(), 0u));
    Dev<int32_t> d_ids(ids);
    Dev<kcu::DeviceRow> d_row(std::vector<kcu::DeviceRow>{row});
    Dev<kcu::DeviceRowResult> d_res(1);
    ok(kcu::sample_rows(l.p, 1, vocab, static_cast<int32_t>(vocab), d_row.p, d_ids.p, w.p, flags.p,
                        d_res.p, nullptr),
       "sample_rows");
    const kcu::DeviceRowResult r = d_res.get()[0];
    for (uint32_t f : flags.get()) {
      if (f != 0u) return internal_error("the sampler left its flag scratch dirty");
    }
    if (r.error != 0) return internal_error("no finite logit");
    SampledToken t;
    t.id = r.id;
    t.logprob = p.logprobs ? r.logprob : 0.0f;
    for (int j = 0; j < r.n_top; ++j) t.top.push_back({r.top_ids[j], r.top_logprobs[j]});
    return t;
  }

 private:
  bool f16_;
  std::string why_;
  std::unique_ptr<kcu::Gemm> gemm_;
};

}  // namespace

std::unique_ptr<BackendOps> make_cuda_ops(bool f16) {
  return std::make_unique<CudaOps>(f16);
}

}  // namespace r1::kernels::testing
