// The CPU backend: weights mmap'd in their stored dtype, f32 activations, a
// paged KV cache in bf16 (or f32), kernels from kernels/cpu_ops.h on a
// persistent pool.
#pragma once

#include <memory>
#include <optional>
#include <span>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "model/arch.h"
#include "model/backend.h"
#include "model/decoder.h"
#include "model/weights.h"

namespace r1 {

struct CpuBackendOptions {
  int n_threads = 0;          // 0 = all hardware threads
  int32_t n_kv_blocks = 0;    // KV cache size in blocks
  int32_t block_size = 16;    // tokens per block
  WeightPrecision precision;  // conversions at load; default: the file's dtypes
  // The KV cache's element type: bf16 (half the bytes attention reads at
  // long contexts, as the GPU backend's) or f32; unset: auto_kv_dtype().
  std::optional<DType> kv_dtype;
};

class CpuBackend final : public Backend, private DecoderOps {
 public:
  // `files` keeps the mapped tensors alive; `n_valid_vocab` is the tokenizer's
  // size (ids above it are padding rows, masked to -inf).
  static Result<std::unique_ptr<CpuBackend>> create(const ModelConfig& config,
                                                    std::shared_ptr<const WeightFiles> files,
                                                    int32_t n_valid_vocab,
                                                    const CpuBackendOptions& options);

  const ModelConfig& config() const override { return config_; }
  int32_t n_valid_vocab() const override { return n_valid_vocab_; }
  int32_t n_kv_blocks() const override { return options_.n_kv_blocks; }
  int32_t block_size() const override { return options_.block_size; }
  Status step(const ForwardBatch& batch, std::span<const RowRequest> rows,
              std::span<RowResult> results) override;
  int64_t weight_bytes_per_token() const override { return r1::weight_bytes_per_token(weights_); }
  int64_t kv_bytes_per_position() const override { return kv_bytes_per_token(config_, kv_dtype_); }
  void set_profile(StepProfile* profile) override { profile_ = profile; }

  // Bytes of KV cache per token (all layers, K and V).
  static int64_t kv_bytes_per_token(const ModelConfig& config, DType kv_dtype);
  // The KV cache's dtype when none is asked for, as vLLM's "auto": f32 for
  // layers computed from f32 weights (converted, or the file's), else bf16.
  static DType auto_kv_dtype(const WeightFiles& files, const WeightPrecision& precision);
  DType kv_dtype() const { return kv_dtype_; }

 private:
  CpuBackend(const ModelConfig& config, std::shared_ptr<const WeightFiles> files,
             ModelWeights weights, ArchSpec spec, int32_t n_valid_vocab,
             const CpuBackendOptions& options);
  // The model over a validated batch: logits_ gets [n_logit_rows, vocab]
  // (padding ids at -inf).
  void forward(const ForwardBatch& batch);
  void ensure_scratch(int64_t n_tokens, int64_t n_logit_rows);
  // fn(layer's KV view), the view of the cache's element type.
  template <typename Fn>
  void with_kv_layer(int64_t layer, Fn&& fn);

  // DecoderOps, over the activations below.
  void embed(const ForwardBatch& batch) override;
  void norm(int64_t layer, NormSlot slot) override;
  void add_norm(int64_t layer, NormSlot slot) override;
  void qkv(int64_t layer) override;
  void rope_store(int64_t layer, const ForwardBatch& batch) override;
  void attention(int64_t layer, const ForwardBatch& batch) override;
  void o_proj(int64_t layer) override;
  void gate_up(int64_t layer) override;
  void down(int64_t layer) override;
  void add() override;
  void logits(const ForwardBatch& batch) override;
  int64_t bytes(StepOp op, int64_t layer, const ForwardBatch& batch) const override;
  // K/V bytes the batch's attention reads, all layers (profile only).
  int64_t kv_bytes_read(const ForwardBatch& batch) const;

  ModelConfig config_;
  std::shared_ptr<const WeightFiles> files_;
  ModelWeights weights_;
  ArchSpec spec_;
  int32_t n_valid_vocab_;
  CpuBackendOptions options_;
  DType kv_dtype_;
  ThreadPool pool_;
  StepProfile* profile_ = nullptr;
  // KV cache, per layer, in kv_dtype_ (one of the two pairs is allocated),
  // laid out as the CPU kernels want it (kernels/cpu_ops.h: K transposed
  // within a block).
  std::vector<AlignedBuffer<float>> k_cache_, v_cache_;
  std::vector<AlignedBuffer<uint16_t>> k_cache16_, v_cache16_;
  // Activations for up to scratch_tokens_ tokens (grown on demand, reused).
  int64_t scratch_tokens_ = 0;
  int64_t n_tokens_ = 0;       // of the step being run
  AlignedBuffer<float> x_;     // [n, hidden] residual stream
  AlignedBuffer<float> h_;     // [n, hidden] normed input / projection output
  AlignedBuffer<float> q_;     // [n, n_heads * head_dim]
  AlignedBuffer<float> k_;     // [n, n_kv_heads * head_dim]
  AlignedBuffer<float> v_;     // [n, n_kv_heads * head_dim]
  AlignedBuffer<float> attn_;  // [n, n_heads * head_dim]
  AlignedBuffer<float> gate_;  // [n, intermediate] silu(gate) * up
  AlignedBuffer<float> rows_;  // [n_logit_rows, hidden]
  std::vector<float> logits_;  // [n_logit_rows, vocab]
};

}  // namespace r1
