// The CUDA backend's class, shared by cuda_backend.cpp (creation, memory
// plan, step upload, the step and its CUDA graphs) and cuda_backend_ops.cpp
// (the decoder ops, the products, sampling and the bytes each op reads).
// Private to model/; built only with R1SERVE_WITH_CUDA.
#pragma once

#if R1SERVE_WITH_CUDA

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/dtype.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/sampling_row.h"
#include "model/arch.h"
#include "model/cuda_backend.h"
#include "model/cuda_device_memory.h"
#include "model/decoder.h"
#include "model/weights.h"
#include "obs/log.h"

namespace r1::cuda_detail {

namespace kcu = kernels::cuda;
using kcu::bf16_t;
using namespace cuda_memory;

struct DeviceLayer {
  DeviceMatrix qkv, o, gate_up, down;
  DeviceBuffer qkv_bias, attn_norm, mlp_norm;  // f32
};

// Logit rows are normed, projected and sampled this many at a time.
constexpr int64_t kRowChunk = 256;
// The flash-decoding partials: a decode batch of 256 tokens with 28 heads
// and head_dim 128 gets 9 splits of its contexts; long prefills get one.
constexpr int64_t kAttentionWorkspaceBytes = int64_t{64} << 20;

class CudaBackend final : public Backend, private DecoderOps {
 public:
  static Result<std::unique_ptr<Backend>> create(const ModelConfig& config,
                                                 std::shared_ptr<const WeightFiles> files,
                                                 int32_t n_valid_vocab,
                                                 const CudaBackendOptions& options);
  ~CudaBackend() override {
    cudaSetDevice(options_.device);  // the destroying thread may be another
    for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
    if (stream_) cudaStreamDestroy(stream_);
    if (pinned_) cudaFreeHost(pinned_);
  }

  const ModelConfig& config() const override { return config_; }
  int32_t n_valid_vocab() const override { return n_valid_vocab_; }
  int32_t n_kv_blocks() const override { return n_blocks_; }
  int32_t block_size() const override { return options_.block_size; }
  int64_t weight_bytes_per_token() const override { return weight_bytes_; }
  int64_t kv_bytes_per_position() const override {
    return 2 * config_.n_layers * config_.n_kv_heads * config_.head_dim * 2;  // bf16
  }
  void set_profile(StepProfile* profile) override { profile_ = profile; }
  Status step(const ForwardBatch& batch, std::span<const RowRequest> rows,
              std::span<RowResult> results) override;

 private:
  CudaBackend(const ModelConfig& config, ArchSpec spec, int32_t n_valid_vocab,
              const CudaBackendOptions& options)
      : config_(config), spec_(std::move(spec)), n_valid_vocab_(n_valid_vocab), options_(options) {}

  Status load(const WeightFiles& files);
  Status plan_memory();
  // Copies the batch and the rows' parameters; a row whose penalty ids are
  // outside the vocabulary gets its error in `results` and samples nothing.
  Status upload_step(const ForwardBatch& batch, std::span<const RowRequest> rows,
                     std::span<RowResult> results);
  // y = x w^T for the step's n tokens: quantised matrices on few tokens run
  // the GEMV, otherwise cuBLASLt (on a dequantised copy when quantised).
  void product(const bf16_t* x, const DeviceMatrix& w, int64_t n, void* y, bool f32_out);
  // The int8 GEMM path of product(); false when cuBLASLt refused the shape
  // (the matrix then takes the dequantised path from now on).
  bool int8_product(const bf16_t* x, const DeviceMatrix& w, int64_t n, void* y, bool f32_out);
  void check(cudaError_t e, const char* what);
  void sample_chunk(int64_t first, int64_t count);

  // DecoderOps.
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

  const float* norm_weight(int64_t layer, NormSlot slot) const {
    const DeviceLayer& l = layers_[static_cast<size_t>(layer)];
    return (slot == NormSlot::kAttention ? l.attn_norm : l.mlp_norm).as<float>();
  }
  // --dtype int8 with --int8-prefill int8-gemm.
  bool int8_gemm_prefill() const {
    return options_.weights == GpuWeights::kInt8 && options_.int8_prefill == Int8Prefill::kInt8Gemm;
  }
  int64_t qkv_width() const {
    return (config_.n_heads + 2 * config_.n_kv_heads) * config_.head_dim;
  }

  ModelConfig config_;
  ArchSpec spec_;
  int32_t n_valid_vocab_;
  CudaBackendOptions options_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<kcu::Gemm> gemm_;
  StepProfile* profile_ = nullptr;
  int64_t weight_bytes_ = 0;

  // Weights.
  DeviceBuffer embed_;  // bf16 [vocab, hidden]
  DeviceMatrix lm_head_;
  DeviceBuffer final_norm_, inv_freq_;
  std::vector<DeviceLayer> layers_;
  int64_t largest_matrix_ = 0;     // elements, for the dequantisation scratch
  bool fp8_tensor_cores_ = false;  // compute capability 8.9 or later
  // Activations, KV cache and 16-bit weights in f16 rather than bf16: on
  // GPUs without bf16 tensor cores (sm_75), or with R1SERVE_CUDA_F16=1.
  bool act_f16_ = false;
  DeviceBuffer x_fp8_, fp8_scalars_;  // activations as FP8; their scale and amax
  // Activations as int8 (Int8Prefill::kInt8Gemm) and their per-token
  // scales; the int32 sums go through dequant_.
  DeviceBuffer x_int8_, x_int8_scales_;

  // KV cache: [n_layers][2][n_blocks, block_size, n_kv_heads, head_dim] bf16.
  DeviceBuffer kv_;
  int32_t n_blocks_ = 0;
  bf16_t* k_cache(int64_t layer) const { return kv_.as<bf16_t>() + (2 * layer) * kv_layer_elems_; }
  bf16_t* v_cache(int64_t layer) const {
    return kv_.as<bf16_t>() + (2 * layer + 1) * kv_layer_elems_;
  }
  int64_t kv_layer_elems_ = 0;

  // Activations for max_batched_tokens tokens.
  DeviceBuffer x_, h_, qkv_, q_, attn_, gate_up_, g_, dequant_, attn_ws_;
  DeviceBuffer rows_, rows_bf_, logits_, sample_w_, sample_flags_;
  // Step metadata (device) and its pinned staging on the host.
  DeviceBuffer meta_;
  void* pinned_ = nullptr;
  size_t pinned_bytes_ = 0;
  int32_t* d_ids_ = nullptr;
  int32_t* d_positions_ = nullptr;
  int32_t* d_slots_ = nullptr;
  int32_t* d_token_seq_ = nullptr;
  int32_t* d_tables_ = nullptr;
  int32_t* d_logit_rows_ = nullptr;
  kcu::DeviceRow* d_rows_ = nullptr;
  int32_t* d_row_ids_ = nullptr;
  kcu::DeviceRowResult* d_results_ = nullptr;
  DeviceBuffer row_ids_buf_;  // grows with the prompts + outputs the penalties read

  // The step in flight.
  int64_t n_tokens_ = 0;
  int max_position_ = 0;
  int64_t table_stride_ = 0;    // block-table row stride on the device this step
  int64_t table_capacity_ = 0;  // ints the metadata holds for block tables

  // CUDA graphs of decode steps, one per bucket of tokens (1, 2, 4, ...,
  // 256), captured on first use: every launch of the layers in one replay.
  // A padded step's extra tokens write to a reserved KV block.
  int32_t pad_block_ = 0;
  int64_t graph_bucket_ = 0;  // this step's bucket; 0 = run eagerly
  bool graphs_enabled_ = true;
  std::map<int64_t, cudaGraphExec_t> graphs_;
  int64_t max_pos_blocks() const {
    return (config_.max_position_embeddings + options_.block_size - 1) / options_.block_size;
  }
  int64_t bucket_for(int64_t n) const;
  Status run_graph(const ForwardBatch& batch);
  std::span<const RowRequest> rows_in_;
  std::span<RowResult> results_out_;
  std::vector<kcu::DeviceRow> host_rows_;
  Status step_error_;
};

}  // namespace r1::cuda_detail

#endif  // R1SERVE_WITH_CUDA
