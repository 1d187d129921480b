#include "model/cpu_backend.h"

#include <climits>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "kernels/cpu_ops.h"

namespace r1 {

namespace kc = kernels::cpu;

int64_t CpuBackend::kv_bytes_per_token(const ModelConfig& c, DType kv_dtype) {
  return 2 * c.n_layers * c.n_kv_heads * c.head_dim * static_cast<int64_t>(dtype_size(kv_dtype));
}

DType CpuBackend::auto_kv_dtype(const WeightFiles& files, const WeightPrecision& precision) {
  if (precision.layers) return *precision.layers == DType::kF32 ? DType::kF32 : DType::kBF16;
  const TensorInfo* q = files.find("model.layers.0.self_attn.q_proj.weight");
  return q != nullptr && q->dtype == DType::kF32 ? DType::kF32 : DType::kBF16;
}

Result<std::unique_ptr<CpuBackend>> CpuBackend::create(const ModelConfig& config,
                                                       std::shared_ptr<const WeightFiles> files,
                                                       int32_t n_valid_vocab,
                                                       const CpuBackendOptions& options) {
  if (options.block_size <= 0) return invalid_argument("block size must be positive");
  if (options.n_kv_blocks <= 0) return invalid_argument("the KV cache needs at least one block");
  const DType kv_dtype = options.kv_dtype.value_or(auto_kv_dtype(*files, options.precision));
  if (kv_dtype != DType::kBF16 && kv_dtype != DType::kF32) {
    return invalid_argument("the KV cache holds bf16 or f32, not " +
                            std::string(dtype_name(kv_dtype)));
  }
  // Slot ids (block * block_size + offset) are int32 throughout the engine.
  if (static_cast<int64_t>(options.n_kv_blocks) * options.block_size > INT32_MAX) {
    return out_of_range("a KV cache of " + std::to_string(options.n_kv_blocks) + " blocks of " +
                        std::to_string(options.block_size) + " tokens exceeds 2^31 slots");
  }
  if (n_valid_vocab <= 0 || n_valid_vocab > config.vocab_size) {
    return invalid_argument("tokenizer has " + std::to_string(n_valid_vocab) +
                            " tokens but the model's embedding has " +
                            std::to_string(config.vocab_size) + " rows");
  }
  ArchSpec spec = arch_spec(config);
  R1_ASSIGN_OR_RETURN(ModelWeights weights, bind_weights(config, spec.qkv_bias, *files,
                                                         options.precision, options.n_threads));
  const int64_t cache_elems = static_cast<int64_t>(options.n_kv_blocks) * options.block_size *
                              config.n_kv_heads * config.head_dim;
  const int64_t cache_bytes =
      2 * config.n_layers * cache_elems * static_cast<int64_t>(dtype_size(kv_dtype));
  if (cache_bytes > (int64_t{1} << 40)) {
    return resource_exhausted("KV cache of " + std::to_string(cache_bytes) + " bytes requested");
  }
  auto backend = std::unique_ptr<CpuBackend>(new CpuBackend(
      config, std::move(files), std::move(weights), std::move(spec), n_valid_vocab, options));
  R1_RETURN_IF_ERROR(convert_weights(backend->weights_, options.precision, backend->pool_));
  try {
    auto allocate = [&](auto& k, auto& v) {
      k.resize(static_cast<size_t>(config.n_layers));
      v.resize(static_cast<size_t>(config.n_layers));
      for (int64_t l = 0; l < config.n_layers; ++l) {
        k[l].resize(static_cast<size_t>(cache_elems));
        v[l].resize(static_cast<size_t>(cache_elems));
      }
    };
    backend->kv_dtype_ = kv_dtype;
    if (kv_dtype == DType::kBF16) {
      allocate(backend->k_cache16_, backend->v_cache16_);
    } else {
      allocate(backend->k_cache_, backend->v_cache_);
    }
  } catch (const std::bad_alloc&) {
    return resource_exhausted("cannot allocate a KV cache of " + std::to_string(cache_bytes) +
                              " bytes (" + std::to_string(options.n_kv_blocks) + " blocks)");
  }
  return backend;
}

CpuBackend::CpuBackend(const ModelConfig& config, std::shared_ptr<const WeightFiles> files,
                       ModelWeights weights, ArchSpec spec, int32_t n_valid_vocab,
                       const CpuBackendOptions& options)
    : config_(config),
      files_(std::move(files)),
      weights_(std::move(weights)),
      spec_(std::move(spec)),
      n_valid_vocab_(n_valid_vocab),
      options_(options),
      pool_(options.n_threads) {}

void CpuBackend::ensure_scratch(int64_t n, int64_t n_rows) {
  if (n > scratch_tokens_) {
    const auto& c = config_;
    const size_t un = static_cast<size_t>(n);
    x_.resize(un * c.hidden_size);
    h_.resize(un * c.hidden_size);
    q_.resize(un * c.n_heads * c.head_dim);
    k_.resize(un * c.n_kv_heads * c.head_dim);
    v_.resize(un * c.n_kv_heads * c.head_dim);
    attn_.resize(un * c.n_heads * c.head_dim);
    gate_.resize(un * c.intermediate_size);
    scratch_tokens_ = n;
  }
  if (static_cast<size_t>(n_rows * config_.hidden_size) > rows_.size()) {
    rows_.resize(static_cast<size_t>(n_rows * config_.hidden_size));
  }
}

// The ops of the decoder recipe (model/decoder.h) on the CPU kernels.

void CpuBackend::embed(const ForwardBatch& batch) {
  kc::embedding(weights_.embed, batch.token_ids.data(), batch.n_tokens(), x_.data(), pool_);
}

void CpuBackend::norm(int64_t layer, NormSlot slot) {
  const LayerWeights& w = weights_.layers[layer];
  const std::vector<float>& weight = slot == NormSlot::kAttention ? w.attn_norm : w.mlp_norm;
  kc::rmsnorm(x_.data(), weight.data(), static_cast<float>(config_.rms_norm_eps), n_tokens_,
              config_.hidden_size, h_.data(), pool_);
}

void CpuBackend::add_norm(int64_t layer, NormSlot slot) {
  add();
  norm(layer, slot);
}

void CpuBackend::add() {
  const int64_t n = n_tokens_ * config_.hidden_size;
  for (int64_t i = 0; i < n; ++i) x_[i] += h_[i];
}

void CpuBackend::qkv(int64_t layer) {
  const LayerWeights& w = weights_.layers[layer];
  auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  const kc::MatmulOutput qkv[] = {{w.q, bias(w.q_bias), q_.data()},
                                  {w.k, bias(w.k_bias), k_.data()},
                                  {w.v, bias(w.v_bias), v_.data()}};
  kc::matmul_multi(h_.data(), n_tokens_, qkv, pool_);
}

template <typename Fn>
void CpuBackend::with_kv_layer(int64_t layer, Fn&& fn) {
  auto view = [&](auto& k, auto& v) {
    using T = std::remove_reference_t<decltype(*k[layer].data())>;
    return kernels::KvLayerViewOf<T>{k[layer].data(),
                                     v[layer].data(),
                                     options_.n_kv_blocks,
                                     options_.block_size,
                                     static_cast<int32_t>(config_.n_kv_heads),
                                     static_cast<int32_t>(config_.head_dim)};
  };
  if (kv_dtype_ == DType::kBF16) {
    fn(view(k_cache16_, v_cache16_));
  } else {
    fn(view(k_cache_, v_cache_));
  }
}

void CpuBackend::rope_store(int64_t layer, const ForwardBatch& batch) {
  const auto& c = config_;
  kc::rope(q_.data(), batch.positions.data(), spec_.rope_inv_freq.data(), n_tokens_, c.n_heads,
           c.head_dim, pool_);
  kc::rope(k_.data(), batch.positions.data(), spec_.rope_inv_freq.data(), n_tokens_, c.n_kv_heads,
           c.head_dim, pool_);
  with_kv_layer(layer, [&](const auto& kv) {
    kc::kv_store(kv, k_.data(), v_.data(), batch.slot_mapping.data(), n_tokens_);
  });
}

void CpuBackend::attention(int64_t layer, const ForwardBatch& batch) {
  kernels::AttentionBatch ab{batch.n_seqs(), batch.query_start.data(), batch.positions.data(),
                             batch.block_tables.data(), batch.max_blocks_per_seq};
  const float scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  with_kv_layer(layer, [&](const auto& kv) {
    kc::paged_attention(q_.data(), kv, ab, config_.n_heads, scale, attn_.data(), pool_);
  });
}

void CpuBackend::o_proj(int64_t layer) {
  kc::matmul(attn_.data(), weights_.layers[layer].o, nullptr, n_tokens_, h_.data(), pool_);
}

void CpuBackend::gate_up(int64_t layer) {
  const LayerWeights& w = weights_.layers[layer];
  kc::matmul_silu_mul(h_.data(), w.gate, w.up, n_tokens_, gate_.data(), pool_);
}

void CpuBackend::down(int64_t layer) {
  kc::matmul(gate_.data(), weights_.layers[layer].down, nullptr, n_tokens_, h_.data(), pool_);
}

// Only the requested rows go through the final norm and the lm_head.
void CpuBackend::logits(const ForwardBatch& batch) {
  const int64_t n_rows = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t hidden = config_.hidden_size;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* src = x_.data() + static_cast<int64_t>(batch.logit_rows[r]) * hidden;
    std::copy(src, src + hidden, rows_.data() + r * hidden);
  }
  kc::rmsnorm(rows_.data(), weights_.final_norm.data(), static_cast<float>(config_.rms_norm_eps),
              n_rows, hidden, rows_.data(), pool_);
  kc::matmul(rows_.data(), weights_.lm_head, nullptr, n_rows, logits_.data(), pool_);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < n_rows; ++r) {
    float* row = logits_.data() + r * config_.vocab_size;
    for (int64_t id = n_valid_vocab_; id < config_.vocab_size; ++id) row[id] = neg_inf;
  }
}

int64_t CpuBackend::bytes(StepOp op, int64_t layer, const ForwardBatch& batch) const {
  using kernels::matrix_bytes;
  switch (op) {
    case StepOp::kQkv: {
      const LayerWeights& w = weights_.layers[layer];
      return matrix_bytes(w.q) + matrix_bytes(w.k) + matrix_bytes(w.v);
    }
    case StepOp::kOProj:
      return matrix_bytes(weights_.layers[layer].o);
    case StepOp::kGateUp:
      return matrix_bytes(weights_.layers[layer].gate) + matrix_bytes(weights_.layers[layer].up);
    case StepOp::kDown:
      return matrix_bytes(weights_.layers[layer].down);
    case StepOp::kLmHead:
      return matrix_bytes(weights_.lm_head);
    case StepOp::kAttention:
      return kv_bytes_read(batch) / config_.n_layers;
    default:
      return 0;
  }
}

// Each sequence reads its K/V up to its last position once per layer (all
// query heads of a group share the read), summed over layers.
int64_t CpuBackend::kv_bytes_read(const ForwardBatch& batch) const {
  return attended_positions(batch) * kv_bytes_per_token(config_, kv_dtype_);
}

Status CpuBackend::step(const ForwardBatch& batch, std::span<const RowRequest> rows,
                        std::span<RowResult> results) {
  BatchLimits limits{static_cast<int32_t>(config_.vocab_size),
                     static_cast<int32_t>(config_.max_position_embeddings), options_.n_kv_blocks,
                     options_.block_size};
  R1_RETURN_IF_ERROR(validate_batch(batch, limits));
  R1_RETURN_IF_ERROR(validate_rows(batch, rows, results, n_valid_vocab_));
  forward(batch);
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  ProfileScope t(profile_, StepOp::kSample);
  for (size_t r = 0; r < rows.size(); ++r) {
    reference_row(rows[r], std::span<const float>(logits_.data() + r * vocab, vocab), results[r]);
  }
  return ok_status();
}

void CpuBackend::forward(const ForwardBatch& batch) {
  n_tokens_ = batch.n_tokens();
  ensure_scratch(n_tokens_, static_cast<int64_t>(batch.logit_rows.size()));
  logits_.resize(batch.logit_rows.size() * static_cast<size_t>(config_.vocab_size));
  run_decoder(*this, config_, batch, profile_);
}

}  // namespace r1
