// The weights of a decoder bound to the tensors of a WeightFiles: matrices
// stay in the mmap'd file in their stored dtype (views, no copy); the small
// vectors (norms, biases) are widened to f32 once at load.
#pragma once

#include <vector>

#include "core/status.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "kernels/ops.h"

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
};

// Binds every tensor the config implies. The caller keeps `files` alive as
// long as the result. Shapes and dtypes are checked (validate_weights).
Result<ModelWeights> bind_weights(const ModelConfig& config, bool qkv_bias,
                                  const WeightFiles& files);

}  // namespace r1
