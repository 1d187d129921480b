#include "model/cuda_backend.h"

#if !R1SERVE_WITH_CUDA

namespace r1 {

bool cuda_backend_built() {
  return false;
}

Result<std::unique_ptr<Backend>> create_cuda_backend(const ModelConfig&,
                                                     std::shared_ptr<const WeightFiles>, int32_t,
                                                     const CudaBackendOptions&) {
  return unavailable(
      "this r1serve was built without the CUDA backend (configure with -DR1SERVE_CUDA=ON)");
}

Result<std::string> describe_cuda_device(int) {
  return unavailable("this r1serve was built without the CUDA backend");
}

Result<std::vector<double>> measure_device_copy(int, int, size_t) {
  return unavailable("this r1serve was built without the CUDA backend");
}

}  // namespace r1

#else  // R1SERVE_WITH_CUDA

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
#include "model/cuda_device_memory.h"
#include "model/decoder.h"
#include "model/weights.h"
#include "obs/log.h"

namespace r1 {

namespace kcu = kernels::cuda;
using kcu::bf16_t;
using namespace cuda_memory;

namespace {

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

void CudaBackend::check(cudaError_t e, const char* what) {
  if (e != cudaSuccess && step_error_.ok()) {
    step_error_ = internal_error(std::string(what) + ": " + cudaGetErrorString(e));
  }
  if (profile_ != nullptr) cudaStreamSynchronize(stream_);  // per-op times
}

Result<std::unique_ptr<Backend>> CudaBackend::create(const ModelConfig& config,
                                                     std::shared_ptr<const WeightFiles> files,
                                                     int32_t n_valid_vocab,
                                                     const CudaBackendOptions& options) {
  int n_devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&n_devices);
  if (e != cudaSuccess || n_devices == 0) {
    return unavailable(std::string("no CUDA device: ") +
                       (e != cudaSuccess ? cudaGetErrorString(e) : "none found"));
  }
  if (options.device < 0 || options.device >= n_devices) {
    return unavailable("--device cuda:" + std::to_string(options.device) + ": this machine has " +
                       std::to_string(n_devices) + " CUDA device(s)");
  }
  if (options.block_size <= 0 || options.max_batched_tokens <= 0) {
    return invalid_argument("block size and max_batched_tokens must be positive");
  }
  if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0)) {
    return invalid_argument("--gpu-memory-utilization must be in (0, 1]");
  }
  if (config.head_dim % 32 != 0 || config.head_dim > 256) {
    return invalid_argument("the CUDA backend needs head_dim a multiple of 32, at most 256; got " +
                            std::to_string(config.head_dim));
  }
  if (n_valid_vocab <= 0 || n_valid_vocab > config.vocab_size) {
    return invalid_argument("tokenizer has " + std::to_string(n_valid_vocab) +
                            " tokens but the model's embedding has " +
                            std::to_string(config.vocab_size) + " rows");
  }
  R1_CUDA(cudaSetDevice(options.device), "selecting the device");
  std::unique_ptr<CudaBackend> b(
      new CudaBackend(config, arch_spec(config), n_valid_vocab, options));
  cudaDeviceProp prop{};
  R1_CUDA(cudaGetDeviceProperties(&prop, options.device), "reading the device's properties");
  b->fp8_tensor_cores_ = prop.major * 10 + prop.minor >= 89;
  const char* force_f16 = std::getenv("R1SERVE_CUDA_F16");
  b->act_f16_ = prop.major < 8 || (force_f16 != nullptr && std::string(force_f16) == "1");
  if (b->act_f16_) {
    log_info("activations in f16 (sm_" + std::to_string(prop.major * 10 + prop.minor) +
             (prop.major < 8 ? " has no bf16 tensor cores)" : ", R1SERVE_CUDA_F16=1)"));
  }
  b->graphs_enabled_ = options.cuda_graphs;
  R1_CUDA(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking), "creating a stream");
  R1_ASSIGN_OR_RETURN(b->gemm_, kcu::Gemm::create(size_t{32} << 20));
  R1_RETURN_IF_ERROR(b->load(*files));
  R1_RETURN_IF_ERROR(b->plan_memory());
  return std::unique_ptr<Backend>(std::move(b));
}

Status CudaBackend::load(const WeightFiles& files) {
  // Tensors that cannot be uploaded as they are (GGUF block formats) come
  // to the host in the activation dtype; upload_matrix takes it from there.
  WeightPrecision host;
  host.layers = act_f16_ ? DType::kF16 : DType::kBF16;
  host.embed = host.layers;
  R1_ASSIGN_OR_RETURN(ModelWeights w, bind_weights(config_, spec_.qkv_bias, files, host));
  const GpuWeights kind = options_.weights;
  layers_.resize(static_cast<size_t>(config_.n_layers));
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    DeviceLayer& d = layers_[static_cast<size_t>(l)];
    const std::string name = "layer " + std::to_string(l);
    // FP8 on sm_89 and later: one scale per matrix, for cuBLASLt's FP8 GEMM.
    const bool per_tensor = kind == GpuWeights::kFp8 && fp8_tensor_cores_;
    R1_RETURN_IF_ERROR(
        upload_matrix({&lw.q, &lw.k, &lw.v}, kind, name + " qkv", d.qkv, per_tensor, act_f16_));
    R1_RETURN_IF_ERROR(upload_matrix({&lw.o}, kind, name + " o_proj", d.o, per_tensor, act_f16_));
    R1_RETURN_IF_ERROR(upload_matrix({&lw.gate, &lw.up}, kind, name + " gate_up", d.gate_up,
                                     per_tensor, act_f16_));
    R1_RETURN_IF_ERROR(
        upload_matrix({&lw.down}, kind, name + " down", d.down, per_tensor, act_f16_));
    if (!lw.q_bias.empty()) {
      std::vector<float> bias = lw.q_bias;
      bias.insert(bias.end(), lw.k_bias.begin(), lw.k_bias.end());
      bias.insert(bias.end(), lw.v_bias.begin(), lw.v_bias.end());
      R1_RETURN_IF_ERROR(upload_floats(bias, name + " qkv bias", d.qkv_bias));
    }
    R1_RETURN_IF_ERROR(upload_floats(lw.attn_norm, name + " norm", d.attn_norm));
    R1_RETURN_IF_ERROR(upload_floats(lw.mlp_norm, name + " norm", d.mlp_norm));
    for (const DeviceMatrix* m : {&d.qkv, &d.o, &d.gate_up, &d.down}) {
      weight_bytes_ += matrix_device_bytes(m->rows, m->cols, kind);
      largest_matrix_ = std::max(largest_matrix_, m->rows * m->cols);
    }
  }
  // The embedding is only gathered: bf16 whatever the layers' dtype.
  DeviceMatrix embed;
  R1_RETURN_IF_ERROR(
      upload_matrix({&w.embed}, GpuWeights::kBf16, "embedding", embed, false, act_f16_));
  embed_ = std::move(embed.data);
  // The lm_head keeps bf16 under fp8 (its precision matters most), follows
  // int8 otherwise.
  const GpuWeights head_kind = kind == GpuWeights::kInt8 ? kind : GpuWeights::kBf16;
  R1_RETURN_IF_ERROR(upload_matrix({&w.lm_head}, head_kind, "lm_head", lm_head_, false, act_f16_));
  weight_bytes_ += matrix_device_bytes(lm_head_.rows, lm_head_.cols, head_kind);
  if (head_kind != GpuWeights::kBf16) {
    largest_matrix_ = std::max(largest_matrix_, lm_head_.rows * lm_head_.cols);
  }
  R1_RETURN_IF_ERROR(upload_floats(w.final_norm, "final norm", final_norm_));
  R1_RETURN_IF_ERROR(upload_floats(spec_.rope_inv_freq, "rope frequencies", inv_freq_));
  return ok_status();
}

Status CudaBackend::plan_memory() {
  const auto& c = config_;
  const int64_t t = options_.max_batched_tokens;
  const int64_t rows = std::min<int64_t>(t, kRowChunk);
  const int64_t vocab = c.vocab_size;
  const bool quantised = options_.weights != GpuWeights::kBf16;
  const int max_pos = static_cast<int>(std::min<int64_t>(c.max_position_embeddings, INT32_MAX));
  // Step metadata: ids, positions, slots, token_seq, logit rows per token;
  // block tables for up to `t` sequences of the longest context; row
  // requests and results.
  const int64_t max_blocks = (max_pos + options_.block_size - 1) / options_.block_size;
  table_capacity_ = (std::min<int64_t>(t, 4096) + 1) * max_blocks;  // + the padding row
  const int64_t meta_ints = 5 * t + table_capacity_;
  const size_t meta_bytes = static_cast<size_t>(meta_ints) * 4 +
                            static_cast<size_t>(rows) * sizeof(kcu::DeviceRow) +
                            static_cast<size_t>(rows) * sizeof(kcu::DeviceRowResult) + 1024;
  struct Want {
    DeviceBuffer* buf;
    int64_t bytes;
    const char* what;
  };
  const Want wants[] = {
      {&x_, t * c.hidden_size * 4, "residual stream"},
      {&h_, t * c.hidden_size * 2, "activations"},
      {&qkv_, t * qkv_width() * 4, "qkv activations"},
      {&q_, t * c.n_heads * c.head_dim * 2, "rotated queries"},
      {&attn_, t * c.n_heads * c.head_dim * 2, "attention output"},
      {&gate_up_, t * 2 * c.intermediate_size * 2, "gate/up activations"},
      {&g_, t * c.intermediate_size * 2, "mlp activations"},
      {&dequant_, quantised ? largest_matrix_ * 2 : 0, "dequantisation scratch"},
      {&x_fp8_,
       options_.weights == GpuWeights::kFp8
           ? t * std::max({c.hidden_size, c.intermediate_size, c.n_heads * c.head_dim})
           : 0,
       "fp8 activations"},
      {&fp8_scalars_, options_.weights == GpuWeights::kFp8 ? 8 : 0, "fp8 scales"},
      {&attn_ws_, kAttentionWorkspaceBytes, "attention workspace"},
      {&rows_, rows * c.hidden_size * 4, "logit rows"},
      {&rows_bf_, rows * c.hidden_size * 2, "logit rows"},
      {&logits_, rows * vocab * 4, "logits"},
      {&sample_w_, rows * vocab * 4, "sampler scratch"},
      {&sample_flags_, rows * vocab * 4, "sampler scratch"},
      {&meta_, static_cast<int64_t>(meta_bytes), "step metadata"},
  };
  int64_t workspace = 0;
  for (const Want& w : wants) {
    R1_RETURN_IF_ERROR(w.buf->allocate(static_cast<size_t>(w.bytes), w.what));
    workspace += w.bytes;
  }
  R1_CUDA(cudaMemset(sample_flags_.ptr, 0, sample_flags_.bytes), "clearing the sampler scratch");
  pinned_bytes_ = meta_bytes;
  R1_CUDA(cudaMallocHost(&pinned_, pinned_bytes_), "allocating pinned staging memory");
  {
    auto* p = meta_.as<int32_t>();
    d_ids_ = p;
    d_positions_ = p + t;
    d_slots_ = p + 2 * t;
    d_token_seq_ = p + 3 * t;
    d_logit_rows_ = p + 4 * t;
    d_tables_ = p + 5 * t;
    auto* bytes = reinterpret_cast<uint8_t*>(p + meta_ints);
    bytes += (256 - reinterpret_cast<uintptr_t>(bytes) % 256) % 256;
    d_rows_ = reinterpret_cast<kcu::DeviceRow*>(bytes);
    d_results_ = reinterpret_cast<kcu::DeviceRowResult*>(bytes + rows * sizeof(kcu::DeviceRow));
  }

  // KV blocks from what is left under the utilisation cap.
  size_t free_b = 0, total_b = 0;
  R1_CUDA(cudaMemGetInfo(&free_b, &total_b), "reading the device's memory");
  const int64_t kv_per_token = 2 * c.n_layers * c.n_kv_heads * c.head_dim * 2;
  const int64_t block_bytes = kv_per_token * options_.block_size;
  const int64_t used = static_cast<int64_t>(total_b - free_b);
  const int64_t cap =
      static_cast<int64_t>(static_cast<double>(total_b) * options_.gpu_memory_utilization);
  int64_t n_blocks = 0;
  if (options_.kv_cache_tokens > 0) {
    n_blocks = (options_.kv_cache_tokens + options_.block_size - 1) / options_.block_size;
    if (n_blocks * block_bytes > static_cast<int64_t>(free_b)) {
      return resource_exhausted("a KV cache of " + std::to_string(options_.kv_cache_tokens) +
                                " tokens needs " + gib(n_blocks * block_bytes) + "; the GPU has " +
                                gib(static_cast<int64_t>(free_b)) + " free");
    }
  } else {
    n_blocks = std::max<int64_t>(0, cap - used) / block_bytes;
  }
  n_blocks = std::min<int64_t>(n_blocks, INT32_MAX / options_.block_size - 1);
  const int64_t capacity = n_blocks * options_.block_size;
  // A planned cache must hold at least one full step; an explicit size is
  // the caller's (a CLI command sizes it to its own requests).
  if (options_.kv_cache_tokens <= 0 && capacity < options_.max_batched_tokens) {
    return resource_exhausted("the GPU has room for a KV cache of " + std::to_string(capacity) +
                              " tokens after " + gib(weight_bytes_) + " of weights and " +
                              gib(workspace) + " of activations, fewer than one step's " +
                              std::to_string(options_.max_batched_tokens) +
                              " tokens (device memory " + gib(static_cast<int64_t>(total_b)) +
                              "): raise --gpu-memory-utilization, lower --max-batched-tokens, or "
                              "quantise (--dtype int8)");
  }
  n_blocks_ = static_cast<int32_t>(n_blocks);
  pad_block_ = n_blocks_;  // one more block, outside the engine's pool
  kv_layer_elems_ = (n_blocks + 1) * options_.block_size * c.n_kv_heads * c.head_dim;
  R1_RETURN_IF_ERROR(
      kv_.allocate(static_cast<size_t>(2 * c.n_layers * kv_layer_elems_) * 2, "the KV cache"));
  log_info("GPU memory: weights " + gib(weight_bytes_) + ", activations " + gib(workspace) +
           ", KV cache " + gib(static_cast<int64_t>(kv_.bytes)) + " = " + std::to_string(capacity) +
           " tokens; at full context (" + std::to_string(c.max_position_embeddings) + " tokens) " +
           std::to_string(capacity / std::max<int64_t>(1, c.max_position_embeddings)) +
           " sequences at once");
  return ok_status();
}

Status CudaBackend::upload_step(const ForwardBatch& batch, std::span<const RowRequest> rows,
                                std::span<RowResult> results) {
  const int64_t n = batch.n_tokens();
  const int64_t n_seqs = batch.n_seqs();
  // A graph step's tokens are padded to its bucket: the padding is one more
  // sequence, every token at position 0 in the reserved padding block; its
  // tables use the fixed stride of the longest context.
  const int64_t padded = graph_bucket_ > 0 ? graph_bucket_ : n;
  const int64_t table_rows = padded > n ? n_seqs + 1 : n_seqs;
  table_stride_ = graph_bucket_ > 0 ? max_pos_blocks() : batch.max_blocks_per_seq;
  const int64_t table_ints = table_rows * table_stride_;
  if (table_ints > table_capacity_) {
    return invalid_argument("the step's block tables exceed the planned metadata");
  }
  auto* host = static_cast<int32_t*>(pinned_);
  const int64_t t = options_.max_batched_tokens;
  std::copy(batch.token_ids.begin(), batch.token_ids.end(), host);
  std::copy(batch.positions.begin(), batch.positions.end(), host + t);
  std::copy(batch.slot_mapping.begin(), batch.slot_mapping.end(), host + 2 * t);
  max_position_ = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    for (int32_t i = batch.query_start[s]; i < batch.query_start[s + 1]; ++i) {
      host[3 * t + i] = static_cast<int32_t>(s);
    }
  }
  for (int64_t i = n; i < padded; ++i) {
    host[i] = 0;
    host[t + i] = 0;
    host[2 * t + i] = pad_block_ * options_.block_size;
    host[3 * t + i] = static_cast<int32_t>(n_seqs);
  }
  for (int32_t p : batch.positions) max_position_ = std::max(max_position_, p);
  std::copy(batch.logit_rows.begin(), batch.logit_rows.end(), host + 4 * t);
  if (table_stride_ == batch.max_blocks_per_seq) {
    std::copy(batch.block_tables.begin(), batch.block_tables.end(), host + 5 * t);
  } else {
    std::fill(host + 5 * t, host + 5 * t + table_ints, -1);
    for (int64_t s = 0; s < n_seqs; ++s) {
      std::copy_n(batch.block_tables.begin() + s * batch.max_blocks_per_seq,
                  batch.max_blocks_per_seq, host + 5 * t + s * table_stride_);
    }
  }
  if (table_rows > n_seqs) host[5 * t + n_seqs * table_stride_] = pad_block_;
  // The sampling parameters; prompt and output ids for the rows that
  // penalise, into their own growing buffer.
  host_rows_.assign(rows.size(), kcu::DeviceRow{});
  std::vector<int32_t> ids;
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowRequest& in = rows[r];
    kcu::DeviceRow& d = host_rows_[r];
    if (in.sampling != nullptr) d = kcu::sampling_row(*in.sampling, in.draw);
    d.score_target = in.score_target;
    d.n_top = std::max(d.n_top, std::min(in.score_top, kcu::kDeviceMaxTop));
    if (in.sampling != nullptr) {
      const SamplingParams& p = *in.sampling;
      const bool repetition = p.repetition_penalty != 1.0f;
      const bool penalised =
          repetition || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
      if (penalised) {
        // The reference's checks (apply_penalties): prompt ids only for the
        // repetition penalty, against the whole logits row. A bad id fails
        // that row's request; the rest of the step stands.
        const int64_t vocab = config_.vocab_size;
        auto outside = [&](std::span<const int32_t> v) {
          return std::any_of(v.begin(), v.end(), [&](int32_t id) { return id < 0 || id >= vocab; });
        };
        if ((repetition && outside(in.prompt)) || outside(in.generated)) {
          results[r].status =
              invalid_argument("a prompt or generated token id is outside the vocabulary of " +
                               std::to_string(vocab));
          d = kcu::DeviceRow{};
          continue;
        }
        d.ids_offset = static_cast<int64_t>(ids.size());
        d.n_prompt = static_cast<int32_t>(in.prompt.size());
        d.n_generated = static_cast<int32_t>(in.generated.size());
        ids.insert(ids.end(), in.prompt.begin(), in.prompt.end());
        ids.insert(ids.end(), in.generated.begin(), in.generated.end());
      }
    }
  }
  const int64_t meta_ints = 5 * t + table_ints;
  R1_CUDA(cudaMemcpyAsync(d_ids_, host, static_cast<size_t>(meta_ints) * 4, cudaMemcpyHostToDevice,
                          stream_),
          "copying the step's batch");
  if (!ids.empty()) {
    if (row_ids_buf_.bytes < ids.size() * 4) {
      R1_CUDA(cudaStreamSynchronize(stream_), "waiting for the stream");
      row_ids_buf_ = DeviceBuffer();
      R1_RETURN_IF_ERROR(row_ids_buf_.allocate(ids.size() * 8, "penalty token ids"));
    }
    R1_CUDA(cudaMemcpyAsync(row_ids_buf_.ptr, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice,
                            stream_),
            "copying penalty ids");
    // `ids` is pageable: the copy is staged before cudaMemcpyAsync returns.
  }
  d_row_ids_ = row_ids_buf_.as<int32_t>();
  return ok_status();
}

void CudaBackend::product(const bf16_t* x, const DeviceMatrix& w, int64_t n, void* y,
                          bool f32_out) {
  if (n == 0) return;
  if (w.kind == GpuWeights::kBf16) {
    const Status s =
        gemm_->matmul(x, w.data.as<bf16_t>(), n, w.rows, w.cols, y, f32_out, stream_, act_f16_);
    if (!s.ok() && step_error_.ok()) step_error_ = s;
    check(cudaSuccess, "matmul");  // waits for it when profiling
    return;
  }
  const kcu::QuantKind qk =
      w.kind == GpuWeights::kInt8 ? kcu::QuantKind::kInt8 : kcu::QuantKind::kFp8E4M3;
  if (w.fp8_gemm && n > kcu::kQuantGemvMaxTokens) {
    float* x_scale = fp8_scalars_.as<float>();
    check(kcu::quantize_fp8_tensor(x, n * w.cols, x_fp8_.as<uint8_t>(), x_scale, x_scale + 1,
                                   stream_, act_f16_),
          "quantising activations to fp8");
    const Status s =
        gemm_->matmul_fp8(x_fp8_.as<uint8_t>(), x_scale, w.data.as<uint8_t>(), w.scales.as<float>(),
                          n, w.rows, w.cols, y, f32_out, stream_, act_f16_);
    if (s.ok()) {
      check(cudaSuccess, "fp8 matmul");
      return;
    }
    log_warning("cuBLASLt's fp8 product of " + std::to_string(w.rows) + " x " +
                std::to_string(w.cols) + " failed (" + s.message() +
                "); that matrix goes through bf16 from now on");
    w.fp8_gemm = false;
  }
  if (n <= kcu::kQuantGemvMaxTokens) {
    check(kcu::quant_gemv(qk, w.data.ptr, w.scales.as<float>(), w.rows, w.cols, x, n, y, f32_out,
                          stream_, act_f16_),
          "quantised GEMV");
    return;
  }
  check(kcu::dequantize(qk, w.data.ptr, w.scales.as<float>(), w.rows, w.cols, dequant_.as<bf16_t>(),
                        stream_, act_f16_),
        "dequantising a weight matrix");
  const Status s =
      gemm_->matmul(x, dequant_.as<bf16_t>(), n, w.rows, w.cols, y, f32_out, stream_, act_f16_);
  if (!s.ok() && step_error_.ok()) step_error_ = s;
  check(cudaSuccess, "matmul");
}

void CudaBackend::embed(const ForwardBatch&) {
  check(kcu::embedding(embed_.as<bf16_t>(), config_.hidden_size, d_ids_, n_tokens_, x_.as<float>(),
                       stream_, act_f16_),
        "embedding");
}

void CudaBackend::norm(int64_t layer, NormSlot slot) {
  check(kcu::rmsnorm(x_.as<float>(), norm_weight(layer, slot),
                     static_cast<float>(config_.rms_norm_eps), n_tokens_, config_.hidden_size,
                     h_.as<bf16_t>(), stream_, act_f16_),
        "rmsnorm");
}

void CudaBackend::add_norm(int64_t layer, NormSlot slot) {
  check(kcu::add_rmsnorm(x_.as<float>(), h_.as<bf16_t>(), norm_weight(layer, slot),
                         static_cast<float>(config_.rms_norm_eps), n_tokens_, config_.hidden_size,
                         h_.as<bf16_t>(), stream_, act_f16_),
        "add + rmsnorm");
}

void CudaBackend::add() {
  check(kcu::add_residual(x_.as<float>(), h_.as<bf16_t>(), n_tokens_, config_.hidden_size, stream_,
                          act_f16_),
        "residual add");
}

// f32 out: the biases are added before anything is rounded (Qwen2's large
// q/k biases nearly cancel the product in some channels).
void CudaBackend::qkv(int64_t layer) {
  product(h_.as<bf16_t>(), layers_[static_cast<size_t>(layer)].qkv, n_tokens_, qkv_.ptr, true);
}

void CudaBackend::rope_store(int64_t layer, const ForwardBatch&) {
  const DeviceLayer& l = layers_[static_cast<size_t>(layer)];
  check(kcu::qkv_bias_rope_store(
            qkv_.as<float>(), l.qkv_bias.as<float>(), inv_freq_.as<float>(), d_positions_, d_slots_,
            n_tokens_, static_cast<int>(config_.n_heads), static_cast<int>(config_.n_kv_heads),
            static_cast<int>(config_.head_dim), q_.as<bf16_t>(), k_cache(layer), v_cache(layer),
            stream_, act_f16_),
        "qkv bias + rope + KV store");
}

void CudaBackend::attention(int64_t layer, const ForwardBatch& batch) {
  kcu::AttentionArgs a;
  a.q = q_.as<bf16_t>();
  a.q_stride = config_.n_heads * config_.head_dim;
  a.k_cache = k_cache(layer);
  a.v_cache = v_cache(layer);
  a.block_size = options_.block_size;
  a.n_heads = static_cast<int>(config_.n_heads);
  a.n_kv_heads = static_cast<int>(config_.n_kv_heads);
  a.head_dim = static_cast<int>(config_.head_dim);
  a.scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  a.n_tokens = n_tokens_;
  a.token_seq = d_token_seq_;
  a.positions = d_positions_;
  a.block_tables = d_tables_;
  a.max_blocks_per_seq = static_cast<int>(table_stride_);
  a.max_position = max_position_;
  a.out = attn_.as<bf16_t>();
  a.workspace = attn_ws_.as<float>();
  a.f16 = act_f16_;
  a.workspace_floats = static_cast<int64_t>(attn_ws_.bytes / 4);
  // A graph replays one launch shape: as many splits as the workspace holds
  // for the bucket, whatever this step's contexts.
  if (graph_bucket_ > 0) a.fixed_splits = a.max_splits;
  check(kcu::paged_attention(a, stream_), "paged attention");
}

void CudaBackend::o_proj(int64_t layer) {
  product(attn_.as<bf16_t>(), layers_[static_cast<size_t>(layer)].o, n_tokens_, h_.ptr, false);
}

void CudaBackend::gate_up(int64_t layer) {
  product(h_.as<bf16_t>(), layers_[static_cast<size_t>(layer)].gate_up, n_tokens_, gate_up_.ptr,
          false);
  check(kcu::silu_mul(gate_up_.as<bf16_t>(), n_tokens_, config_.intermediate_size, g_.as<bf16_t>(),
                      stream_, act_f16_),
        "silu * up");
}

void CudaBackend::down(int64_t layer) {
  product(g_.as<bf16_t>(), layers_[static_cast<size_t>(layer)].down, n_tokens_, h_.ptr, false);
}

// The logit rows in chunks: final norm, lm_head (f32 logits), the device
// sampler; rows that want more top entries than it reports go through the
// reference on the host.
void CudaBackend::logits(const ForwardBatch& batch) {
  const int64_t n_rows = static_cast<int64_t>(batch.logit_rows.size());
  for (int64_t first = 0; first < n_rows && step_error_.ok(); first += kRowChunk) {
    const int64_t count = std::min(kRowChunk, n_rows - first);
    check(kcu::gather_rows(x_.as<float>(), d_logit_rows_ + first, count, config_.hidden_size,
                           rows_.as<float>(), stream_),
          "gathering the logit rows");
    check(kcu::rmsnorm(rows_.as<float>(), final_norm_.as<float>(),
                       static_cast<float>(config_.rms_norm_eps), count, config_.hidden_size,
                       rows_bf_.as<bf16_t>(), stream_, act_f16_),
          "final rmsnorm");
    product(rows_bf_.as<bf16_t>(), lm_head_, count, logits_.ptr, true);
    sample_chunk(first, count);
  }
}

void CudaBackend::sample_chunk(int64_t first, int64_t count) {
  if (!step_error_.ok()) return;
  const size_t row_bytes = static_cast<size_t>(count) * sizeof(kcu::DeviceRow);
  check(cudaMemcpyAsync(d_rows_, host_rows_.data() + first, row_bytes, cudaMemcpyHostToDevice,
                        stream_),
        "copying row parameters");
  check(kcu::sample_rows(logits_.as<float>(), count, config_.vocab_size, n_valid_vocab_, d_rows_,
                         d_row_ids_, sample_w_.as<float>(), sample_flags_.as<uint32_t>(),
                         d_results_, stream_),
        "device sampler");
  std::vector<kcu::DeviceRowResult> out(static_cast<size_t>(count));
  check(cudaMemcpyAsync(out.data(), d_results_, out.size() * sizeof(kcu::DeviceRowResult),
                        cudaMemcpyDeviceToHost, stream_),
        "copying sampled ids");
  check(cudaStreamSynchronize(stream_), "device step");
  if (!step_error_.ok()) return;
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  std::vector<float> host_logits;
  for (int64_t i = 0; i < count; ++i) {
    const size_t r = static_cast<size_t>(first + i);
    const RowRequest& in = rows_in_[r];
    RowResult& res = results_out_[r];
    if (in.score_top > kcu::kDeviceMaxTop && res.status.ok()) {
      // A whole distribution (a KL divergence): the row on the host, masked.
      host_logits.resize(vocab);
      check(cudaMemcpy(host_logits.data(), logits_.as<float>() + i * static_cast<int64_t>(vocab),
                       vocab * 4, cudaMemcpyDeviceToHost),
            "copying a scored row");
      std::fill(host_logits.begin() + n_valid_vocab_, host_logits.end(),
                -std::numeric_limits<float>::infinity());
      reference_row(in, host_logits, res);
      continue;
    }
    if (!res.status.ok()) continue;  // refused by upload_step
    const kcu::DeviceRowResult& d = out[static_cast<size_t>(i)];
    if (d.error != 0) {
      res.status = internal_error("logits row has no finite value");
      continue;
    }
    std::vector<TokenLogprob> top;
    for (int j = 0; j < d.n_top; ++j) top.push_back({d.top_ids[j], d.top_logprobs[j]});
    if (in.sampling != nullptr) {
      res.sampled.id = d.id;
      res.sampled.logprob = in.sampling->logprobs ? d.logprob : 0.0f;
      const size_t n = std::min<size_t>(
          top.size(), static_cast<size_t>(in.sampling->logprobs ? in.sampling->n_top_logprobs : 0));
      res.sampled.top.assign(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n));
    }
    if (in.score_target >= 0) res.target_logprob = d.target_logprob;
    const size_t n_score = std::min<size_t>(top.size(), static_cast<size_t>(in.score_top));
    res.top.assign(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n_score));
  }
}

int64_t CudaBackend::bytes(StepOp op, int64_t layer, const ForwardBatch& batch) const {
  const auto mb = [&](const DeviceMatrix& m) {
    return matrix_device_bytes(m.rows, m.cols, m.kind);
  };
  switch (op) {
    case StepOp::kQkv:
      return mb(layers_[static_cast<size_t>(layer)].qkv);
    case StepOp::kOProj:
      return mb(layers_[static_cast<size_t>(layer)].o);
    case StepOp::kGateUp:
      return mb(layers_[static_cast<size_t>(layer)].gate_up);
    case StepOp::kDown:
      return mb(layers_[static_cast<size_t>(layer)].down);
    case StepOp::kLmHead:
      return mb(lm_head_);
    case StepOp::kAttention: {
      // Each sequence reads one layer's bf16 K and V up to its last position.
      return attended_positions(batch) * 2 * config_.n_kv_heads * config_.head_dim * 2;
    }
    default:
      return 0;
  }
}

Status CudaBackend::step(const ForwardBatch& batch, std::span<const RowRequest> rows,
                         std::span<RowResult> results) {
  BatchLimits limits{static_cast<int32_t>(config_.vocab_size),
                     static_cast<int32_t>(config_.max_position_embeddings), n_blocks_,
                     options_.block_size};
  R1_RETURN_IF_ERROR(validate_batch(batch, limits));
  R1_RETURN_IF_ERROR(validate_rows(batch, rows, results, n_valid_vocab_));
  if (batch.n_tokens() > options_.max_batched_tokens) {
    return invalid_argument("a step of " + std::to_string(batch.n_tokens()) +
                            " tokens exceeds max_batched_tokens " +
                            std::to_string(options_.max_batched_tokens));
  }
  // The device is per host thread: the engine's thread steps, another
  // created the backend.
  R1_CUDA(cudaSetDevice(options_.device), "selecting the device");
  for (RowResult& r : results) r = RowResult{};
  // Decode-only steps replay a CUDA graph (not while profiling: the
  // profile times each op).
  const bool decode_only = batch.n_tokens() == batch.n_seqs();
  graph_bucket_ =
      graphs_enabled_ && profile_ == nullptr && decode_only ? bucket_for(batch.n_tokens()) : 0;
  R1_RETURN_IF_ERROR(upload_step(batch, rows, results));
  n_tokens_ = graph_bucket_ > 0 ? graph_bucket_ : batch.n_tokens();
  rows_in_ = rows;
  results_out_ = results;
  step_error_ = ok_status();
  if (graph_bucket_ > 0) {
    R1_RETURN_IF_ERROR(run_graph(batch));
  } else {
    run_decoder(*this, config_, batch, profile_);
  }
  // Always drained before returning: the next step rewrites the pinned
  // staging its copies read from.
  const cudaError_t drained = cudaStreamSynchronize(stream_);
  if (step_error_.ok()) step_error_ = cuda_status(drained, "device step");
  return step_error_;
}

int64_t CudaBackend::bucket_for(int64_t n) const {
  // The bucket, its padding sequence and every table row must fit the
  // planned metadata.
  const int64_t limit = std::min<int64_t>({256, options_.max_batched_tokens - 1, 4096});
  int64_t b = 1;
  while (b < n) b *= 2;
  return b <= limit ? b : 0;
}

// The layers of a decode step of graph_bucket_ tokens, as one graph replay
// (captured the first time), then the logit rows outside it (their count
// varies). A capture that fails turns graphs off for good, with a warning,
// and the step runs eagerly.
Status CudaBackend::run_graph(const ForwardBatch& batch) {
  ForwardBatch layers = batch;
  layers.logit_rows = {};
  auto it = graphs_.find(graph_bucket_);
  if (it == graphs_.end()) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
      run_decoder(*this, config_, layers, nullptr);
      e = cudaStreamEndCapture(stream_, &graph);
    }
    if (e == cudaSuccess && step_error_.ok()) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (e != cudaSuccess || !step_error_.ok()) {
      log_warning("CUDA graphs are off: capturing a decode step of " +
                  std::to_string(graph_bucket_) + " tokens failed (" +
                  (e != cudaSuccess ? std::string(cudaGetErrorString(e)) : step_error_.message()) +
                  ")");
      cudaGetLastError();  // clear a non-sticky error
      if (exec != nullptr) cudaGraphExecDestroy(exec);
      graphs_enabled_ = false;
      step_error_ = ok_status();
      // Eagerly, without the padding: the metadata is laid out again.
      graph_bucket_ = 0;
      R1_RETURN_IF_ERROR(upload_step(batch, rows_in_, results_out_));
      n_tokens_ = batch.n_tokens();
      run_decoder(*this, config_, batch, profile_);
      return ok_status();
    }
    it = graphs_.emplace(graph_bucket_, exec).first;
  }
  check(cudaGraphLaunch(it->second, stream_), "replaying a decode graph");
  if (!batch.logit_rows.empty()) logits(batch);
  return ok_status();
}

}  // namespace

bool cuda_backend_built() {
  return true;
}

Result<std::unique_ptr<Backend>> create_cuda_backend(const ModelConfig& config,
                                                     std::shared_ptr<const WeightFiles> files,
                                                     int32_t n_valid_vocab,
                                                     const CudaBackendOptions& options) {
  return CudaBackend::create(config, std::move(files), n_valid_vocab, options);
}

}  // namespace r1

#endif  // R1SERVE_WITH_CUDA
