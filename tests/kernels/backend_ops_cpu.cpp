// The CPU backend's ops (kernels/cpu_ops.h on a thread pool) behind
// BackendOps, and the list of built backends.
#include <cmath>

#include "backend_ops.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::testing {
namespace {

namespace kc = kernels::cpu;

class CpuOps final : public BackendOps {
 public:
  std::string name() const override { return "cpu"; }
  float atol() const override { return 1e-5f; }
  float rtol() const override { return 1e-4f; }

  void embedding(const std::vector<float>& table, int64_t hidden, const std::vector<int32_t>& ids,
                 std::vector<float>& out) override {
    const int64_t vocab = static_cast<int64_t>(table.size()) / hidden;
    out.resize(ids.size() * static_cast<size_t>(hidden));
    kc::embedding(f32_view(table, vocab, hidden), ids.data(), static_cast<int64_t>(ids.size()),
                  out.data(), pool_);
  }
  void rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps, int64_t n,
               int64_t dim, std::vector<float>& out) override {
    out.resize(static_cast<size_t>(n * dim));
    kc::rmsnorm(x.data(), w.data(), eps, n, dim, out.data(), pool_);
  }
  void add_rmsnorm(std::vector<float>& x, const std::vector<float>& h, const std::vector<float>& w,
                   float eps, int64_t n, int64_t dim, std::vector<float>& out) override {
    for (size_t i = 0; i < x.size(); ++i) x[i] += h[i];
    rmsnorm(x, w, eps, n, dim, out);
  }
  void matmul(const std::vector<float>& x, const std::vector<float>& w, int64_t n, int64_t m,
              int64_t k, std::vector<float>& y) override {
    y.resize(static_cast<size_t>(n * m));
    kc::matmul(x.data(), f32_view(w, m, k), nullptr, n, y.data(), pool_);
  }
  void silu_mul(const std::vector<float>& gu, int64_t n, int64_t inter,
                std::vector<float>& out) override {
    out.resize(static_cast<size_t>(n * inter));
    kc::silu_mul(gu.data(), gu.data() + inter, n, inter, 2 * inter, inter, out.data(), pool_);
  }
  void attention_block(const AttentionCase& c, std::vector<float>& out) override {
    const int64_t n = c.n_tokens();
    const int64_t hd = c.head_dim, q_w = c.n_heads * hd, kv_w = c.n_kv_heads * hd;
    const int64_t width = q_w + 2 * kv_w;
    std::vector<float> q(static_cast<size_t>(n * q_w)), k(static_cast<size_t>(n * kv_w)),
        v(static_cast<size_t>(n * kv_w));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < width; ++j) {
        float x = c.qkv[static_cast<size_t>(t * width + j)];
        if (!c.bias.empty()) x += c.bias[static_cast<size_t>(j)];
        if (j < q_w) {
          q[static_cast<size_t>(t * q_w + j)] = x;
        } else if (j < q_w + kv_w) {
          k[static_cast<size_t>(t * kv_w + j - q_w)] = x;
        } else {
          v[static_cast<size_t>(t * kv_w + j - q_w - kv_w)] = x;
        }
      }
    }
    kc::rope(q.data(), c.positions.data(), c.inv_freq.data(), n, c.n_heads, hd, pool_);
    kc::rope(k.data(), c.positions.data(), c.inv_freq.data(), n, c.n_kv_heads, hd, pool_);
    const size_t cache = static_cast<size_t>(c.n_blocks) * c.block_size * kv_w;
    std::vector<float> kc_(cache, 0.0f), vc(cache, 0.0f);
    KvLayerView kv{kc_.data(), vc.data(), c.n_blocks, c.block_size, c.n_kv_heads, c.head_dim};
    kc::kv_store(kv, k.data(), v.data(), c.slots.data(), n);
    AttentionBatch batch{static_cast<int32_t>(c.query_start.size()) - 1, c.query_start.data(),
                         c.positions.data(), c.block_tables.data(), c.max_blocks};
    out.resize(static_cast<size_t>(n * q_w));
    kc::paged_attention(q.data(), kv, batch, c.n_heads, 1.0f / std::sqrt(static_cast<float>(hd)),
                        out.data(), pool_);
  }
  Result<SampledToken> sample(const SamplingParams& params, const std::vector<float>& logits,
                              const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& generated, uint64_t draw) override {
    // The CPU backend samples with the reference itself (CpuBackend::step).
    return sample_row(params, logits, prompt, generated, draw);
  }

 private:
  ThreadPool pool_{3};
};

}  // namespace

std::unique_ptr<BackendOps> make_cpu_ops() {
  return std::make_unique<CpuOps>();
}

std::vector<std::string> built_backend_names() {
#if R1SERVE_WITH_CUDA
  return {"cpu", "cuda", "cuda_f16"};
#else
  return {"cpu"};
#endif
}

std::unique_ptr<BackendOps> make_backend_ops(const std::string& name) {
#if R1SERVE_WITH_CUDA
  if (name == "cuda") return make_cuda_ops(false);
  if (name == "cuda_f16") return make_cuda_ops(true);
#endif
  return make_cpu_ops();
}

}  // namespace r1::kernels::testing
