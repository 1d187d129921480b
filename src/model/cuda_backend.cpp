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

#include "model/detail/cuda_backend_impl.h"

namespace r1 {

namespace cuda_detail {

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
  // Each layer is uploaded as soon as it is bound, and its host copies go
  // with it, so the host holds one converted layer at a time.
  WeightPrecision host;
  host.layers = act_f16_ ? DType::kF16 : DType::kBF16;
  host.embed = host.layers;
  const GpuWeights kind = options_.weights;
  const bool int8_gemm = int8_gemm_prefill();
  layers_.resize(static_cast<size_t>(config_.n_layers));
  auto upload_layer = [&](int64_t l, const LayerWeights& lw) -> Status {
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
      m->int8_gemm = int8_gemm && m->rows % 4 == 0 && m->cols % 4 == 0;  // cuBLASLt's rule
      largest_matrix_ = std::max(largest_matrix_, m->rows * m->cols);
    }
    return ok_status();
  };
  R1_ASSIGN_OR_RETURN(ModelWeights w,
                      bind_weights(config_, spec_.qkv_bias, files, host, 0, upload_layer));
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
  lm_head_.int8_gemm = int8_gemm && lm_head_.rows % 4 == 0 && lm_head_.cols % 4 == 0;
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
  const int64_t widest_input =
      std::max({c.hidden_size, c.intermediate_size, c.n_heads * c.head_dim});
  const bool int8_gemm = int8_gemm_prefill();
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
      {&x_fp8_, options_.weights == GpuWeights::kFp8 ? t * widest_input : 0, "fp8 activations"},
      {&fp8_scalars_, options_.weights == GpuWeights::kFp8 ? 8 : 0, "fp8 scales"},
      {&x_int8_, int8_gemm ? t * widest_input : 0, "int8 activations"},
      {&x_int8_scales_, int8_gemm ? t * 4 : 0, "int8 activation scales"},
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
  if (int8_gemm) {
    log_info("int8 products of more than " + std::to_string(kcu::kQuantGemvMaxTokens) +
             " tokens: activations quantised per token, cuBLASLt's int8 GEMM");
  }
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
      if (masks_stop_ids(p, in.generated.size())) {
        const int64_t vocab = config_.vocab_size;
        if (std::any_of(p.min_tokens_ids.begin(), p.min_tokens_ids.end(),
                        [&](int32_t id) { return id < 0 || id >= vocab; })) {
          results[r].status = invalid_argument("a min_tokens stop id is outside the vocabulary");
          d = kcu::DeviceRow{};
          continue;
        }
        d.masked_offset = static_cast<int64_t>(ids.size());
        d.n_masked = static_cast<int32_t>(p.min_tokens_ids.size());
        ids.insert(ids.end(), p.min_tokens_ids.begin(), p.min_tokens_ids.end());
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

}  // namespace cuda_detail

bool cuda_backend_built() {
  return true;
}

Result<std::unique_ptr<Backend>> create_cuda_backend(const ModelConfig& config,
                                                     std::shared_ptr<const WeightFiles> files,
                                                     int32_t n_valid_vocab,
                                                     const CudaBackendOptions& options) {
  return cuda_detail::CudaBackend::create(config, std::move(files), n_valid_vocab, options);
}

}  // namespace r1

#endif  // R1SERVE_WITH_CUDA
