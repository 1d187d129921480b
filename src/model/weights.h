// The weights of a decoder bound to the tensors of a WeightFiles: matrices
// stay in the mmap'd file in their stored dtype (views, no copy); the small
// vectors (norms, biases) are widened to f32 once at load.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "kernels/ops.h"
#include "kernels/quant.h"

namespace r1 {

struct LayerWeights {
  kernels::MatrixView q, k, v,
      o;  // [n_heads*hd, hidden], [n_kv*hd, hidden] x2, [hidden, n_heads*hd]
  kernels::MatrixView gate, up, down;         // [inter, hidden] x2, [hidden, inter]
  std::vector<float> q_bias, k_bias, v_bias;  // empty when the architecture has none
  std::vector<float> attn_norm, mlp_norm;     // [hidden]
};

struct ModelWeights {
  kernels::MatrixView embed;      // [vocab, hidden]
  kernels::MatrixView lm_head;    // [vocab, hidden]; the embedding when tied
  std::vector<float> final_norm;  // [hidden]
  std::vector<LayerWeights> layers;
  // Matrices converted at load, which the views above point into.
  std::vector<kernels::OwnedMatrix> owned;
};

// The dtypes weights are converted to at load; nullopt keeps the file's
// dtype (the matrices stay mmap'd, nothing is copied).
struct WeightPrecision {
  std::optional<DType> layers;   // q, k, v, o, gate, up, down
  std::optional<DType> lm_head;  // unset: `layers`, except int8 when layers is int4
  std::optional<DType> embed;    // only gathered, one row per token: no bandwidth cost
  int64_t int8_group_size = 0;   // columns per int8 scale; 0 = one per output channel

  // lm_head's dtype after the defaulting rule above.
  std::optional<DType> lm_head_dtype() const;
};

// Converts the matrices `precision` names (quantising, or casting between
// float dtypes) using `pool`; the converted copies live in weights.owned.
// A tied lm_head gets its own copy when its dtype differs from the
// embedding's. Errors: an unsupported target, or memory running out.
Status convert_weights(ModelWeights& weights, const WeightPrecision& precision, ThreadPool& pool);

// Bytes a decode step reads from the weights for one token: every layer
// matrix and the lm_head (one embedding row is negligible).
int64_t weight_bytes_per_token(const ModelWeights& weights);

// Binds every tensor the config implies. The caller keeps `files` alive as
// long as the result. Shapes and dtypes are checked (validate_weights).
// Tensors that cannot be used in place (TensorInfo::viewable() false: GGUF
// block formats, Llama GGUF Q/K rows) are converted here, row by row with
// `n_threads` threads (0: all), straight to the dtype `precision` asks for that
// matrix; where it asks for none, block formats become int8 in groups of
// 32 (the blocks' own granularity) and reordered float matrices keep their
// dtype. The copies live in the result's `owned`.
//
// With `each_layer`, layer i is handed to it as soon as it is bound (in
// order, after the embedding and lm_head); its converted copies are freed
// when the call returns and the result's layers[i] is left empty. A backend
// that uploads the weights to a device holds one layer's conversions at a
// time on the host, not the whole model's (a 70B Q4_K_M in bf16: ~140 GB).
// An error from it stops the bind and is returned.
using LayerSink = std::function<Status(int64_t layer, const LayerWeights& weights)>;
Result<ModelWeights> bind_weights(const ModelConfig& config, bool qkv_bias,
                                  const WeightFiles& files, const WeightPrecision& precision = {},
                                  int n_threads = 0, const LayerSink& each_layer = {});

}  // namespace r1
