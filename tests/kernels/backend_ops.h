// Every built backend's ops behind one host-array interface, for the test
// parameterised over backends (backend_ops_test.cpp, in the spirit of
// llama.cpp's test-backend-ops): each op and the sampler run on the backend
// and on kernels/reference with the same random inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/sampling.h"

namespace r1::kernels::testing {

// One attention block as the decoder runs it: the fused QKV projection's
// output gets its bias, RoPE on q and k, k and v into the paged cache, then
// causal attention of every token over its sequence.
struct AttentionCase {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0, block_size = 0, n_blocks = 0;
  std::vector<float> qkv;                 // [n, (n_heads + 2 n_kv_heads) * head_dim]
  std::vector<float> bias;                // [(n_heads + 2 n_kv_heads) * head_dim] or empty
  std::vector<float> inv_freq;            // [head_dim / 2]
  std::vector<int32_t> positions, slots;  // [n]
  std::vector<int32_t> query_start;       // [n_seqs + 1]
  std::vector<int32_t> block_tables;      // [n_seqs, max_blocks]
  int max_blocks = 0;
  int64_t n_tokens() const { return static_cast<int64_t>(positions.size()); }
};

class BackendOps {
 public:
  virtual ~BackendOps() = default;
  virtual std::string name() const = 0;
  // Empty when the backend can run here; otherwise why not (no device).
  virtual std::string unavailable_reason() const { return {}; }
  // The precision its inputs are held in: the test rounds the reference's
  // inputs the same way, so the tolerance covers the arithmetic only.
  virtual float round_input(float x) const { return x; }
  // |got - want| <= atol + rtol * |want| for its float outputs.
  virtual float atol() const = 0;
  virtual float rtol() const = 0;

  virtual void embedding(const std::vector<float>& table, int64_t hidden,
                         const std::vector<int32_t>& ids, std::vector<float>& out) = 0;
  virtual void rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps,
                       int64_t n, int64_t dim, std::vector<float>& out) = 0;
  // x += h, then out = rmsnorm(x); x is updated.
  virtual void add_rmsnorm(std::vector<float>& x, const std::vector<float>& h,
                           const std::vector<float>& w, float eps, int64_t n, int64_t dim,
                           std::vector<float>& out) = 0;
  // y: [n, m] = x: [n, k] * w: [m, k]^T.
  virtual void matmul(const std::vector<float>& x, const std::vector<float>& w, int64_t n,
                      int64_t m, int64_t k, std::vector<float>& y) = 0;
  // y: [n, m] = x * dequant(q)^T for weight-only quantised rows (q: [m, k]
  // int8 or FP8 E4M3 bytes, scales: [m], kernels/cuda/host_quant.h). False
  // when the backend has no such op (the CPU's int8 quantises activations
  // too; cpu_ops_test covers it against reference::matmul_quantized).
  virtual bool weight_only_matmul(bool fp8, const std::vector<uint8_t>& q,
                                  const std::vector<float>& scales, const std::vector<float>& x,
                                  int64_t n, int64_t m, int64_t k, std::vector<float>& y) {
    (void)fp8, (void)q, (void)scales, (void)x, (void)n, (void)m, (void)k, (void)y;
    return false;
  }
  // y: [n, m] = (x as FP8 with one scale) * (w as FP8 with one scale)^T, the
  // product of FP8 tensor cores (sm_89 and later). Why not, when the backend
  // or device has none.
  virtual std::string fp8_matmul(const std::vector<float>& w, const std::vector<float>& x,
                                 int64_t n, int64_t m, int64_t k, std::vector<float>& y) {
    (void)w, (void)x, (void)n, (void)m, (void)k, (void)y;
    return "no fp8 tensor-core product";
  }
  // y: [n, m] f32 = the int8 tensor-core product of int8 rows q: [m, k]
  // (scales: [m]) and x quantised per token on the device
  // (kernels/cuda/cuda_ops.h quantize_int8_rows, Gemm::matmul_int8,
  // scale_int32_product). Why not, when the backend has no such path.
  virtual std::string int8_gemm_matmul(const std::vector<uint8_t>& q,
                                       const std::vector<float>& scales,
                                       const std::vector<float>& x, int64_t n, int64_t m, int64_t k,
                                       std::vector<float>& y) {
    (void)q, (void)scales, (void)x, (void)n, (void)m, (void)k, (void)y;
    return "no int8 tensor-core product";
  }
  virtual void silu_mul(const std::vector<float>& gate_up, int64_t n, int64_t inter,
                        std::vector<float>& out) = 0;
  // out: [n, n_heads * head_dim].
  virtual void attention_block(const AttentionCase& c, std::vector<float>& out) = 0;
  virtual Result<SampledToken> sample(const SamplingParams& params,
                                      const std::vector<float>& logits,
                                      const std::vector<int32_t>& prompt,
                                      const std::vector<int32_t>& generated, uint64_t draw) = 0;
};

std::unique_ptr<BackendOps> make_cpu_ops();
#if R1SERVE_WITH_CUDA
// f16: the 16-bit activations in f16 (the sm_75 path) rather than bf16.
std::unique_ptr<BackendOps> make_cuda_ops(bool f16);
#endif

// The CPU, and CUDA (bf16 and f16 activations) when this build has it.
std::vector<std::string> built_backend_names();
std::unique_ptr<BackendOps> make_backend_ops(const std::string& name);

}  // namespace r1::kernels::testing
