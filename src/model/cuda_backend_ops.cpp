// The CUDA backend's decoder ops (model/decoder.h), its products through
// cuBLASLt, sampling on the device and the bytes each op reads.
#if R1SERVE_WITH_CUDA

#include "model/detail/cuda_backend_impl.h"

namespace r1::cuda_detail {

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
  if (w.int8_gemm && n > kcu::kQuantGemvMaxTokens && int8_product(x, w, n, y, f32_out)) return;
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

bool CudaBackend::int8_product(const bf16_t* x, const DeviceMatrix& w, int64_t n, void* y,
                               bool f32_out) {
  auto* q = x_int8_.as<int8_t>();
  auto* x_scales = x_int8_scales_.as<float>();
  check(kcu::quantize_int8_rows(x, n, w.cols, q, x_scales, stream_, act_f16_),
        "quantising activations to int8");
  // The int32 sums fill the dequantisation scratch (at least the largest
  // matrix's 2 bytes per weight), as many tokens at a time as it holds; a
  // multiple of 64 tokens, so each chunk's activations start 256-byte
  // aligned (k is a multiple of 4), as cuBLASLt's heuristic assumes.
  auto* sums = dequant_.as<int32_t>();
  int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(dequant_.bytes / 4) / w.rows);
  if (chunk >= 64) chunk -= chunk % 64;
  const size_t out_bytes = f32_out ? 4 : 2;
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    const Status s = gemm_->matmul_int8(q + first * w.cols, w.data.as<int8_t>(), count, w.rows,
                                        w.cols, sums, stream_);
    if (!s.ok()) {
      // The dequantised path rewrites all of y, chunks already done included.
      log_warning("cuBLASLt's int8 product of " + std::to_string(w.rows) + " x " +
                  std::to_string(w.cols) + " on " + std::to_string(count) + " tokens failed (" +
                  s.message() + "); that matrix is dequantised for its products from now on");
      w.int8_gemm = false;
      return false;
    }
    check(kcu::scale_int32_product(
              sums, count, w.rows, x_scales + first, w.scales.as<float>(),
              static_cast<char*>(y) + static_cast<size_t>(first * w.rows) * out_bytes, f32_out,
              stream_, act_f16_),
          "scaling the int8 product");
  }
  return true;
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

}  // namespace r1::cuda_detail

#endif  // R1SERVE_WITH_CUDA
