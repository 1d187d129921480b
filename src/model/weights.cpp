#include "model/weights.h"

#include <cstdint>
#include <string>

#include "format/weight_validation.h"

namespace r1 {

namespace {

Result<const TensorInfo*> find(const WeightFiles& files, const std::string& name) {
  const TensorInfo* t = files.find(name);
  if (t == nullptr) return not_found("tensor " + name + ": missing from the model folder");
  // The kernels read elements in place: the data must be aligned to its
  // element size (writers pad the header to 8 bytes, so real files are).
  if (reinterpret_cast<uintptr_t>(t->data) % dtype_size(t->dtype) != 0) {
    return invalid_argument("tensor " + name + " in " + t->file + ": data at byte offset " +
                            std::to_string(t->offset) + " is not aligned to its " +
                            std::to_string(dtype_size(t->dtype)) + "-byte elements");
  }
  return t;
}

Result<kernels::MatrixView> matrix(const WeightFiles& files, const std::string& name) {
  R1_ASSIGN_OR_RETURN(const TensorInfo* t, find(files, name));
  if (t->shape.size() != 2) return invalid_argument("tensor " + name + ": not a matrix");
  return kernels::MatrixView{t->data, t->dtype, t->shape[0], t->shape[1]};
}

Result<std::vector<float>> vector_f32(const WeightFiles& files, const std::string& name) {
  R1_ASSIGN_OR_RETURN(const TensorInfo* t, find(files, name));
  const int64_t n = t->n_elements();
  kernels::MatrixView view{t->data, t->dtype, 1, n};
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = kernels::matrix_at(view, 0, i);
  return out;
}

}  // namespace

Result<ModelWeights> bind_weights(const ModelConfig& config, bool qkv_bias,
                                  const WeightFiles& files) {
  R1_RETURN_IF_ERROR(validate_weights(config, files));
  ModelWeights w;
  R1_ASSIGN_OR_RETURN(w.embed, matrix(files, "model.embed_tokens.weight"));
  if (config.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    R1_ASSIGN_OR_RETURN(w.lm_head, matrix(files, "lm_head.weight"));
  }
  R1_ASSIGN_OR_RETURN(w.final_norm, vector_f32(files, "model.norm.weight"));
  w.layers.resize(static_cast<size_t>(config.n_layers));
  for (int64_t i = 0; i < config.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[i];
    R1_ASSIGN_OR_RETURN(l.q, matrix(files, p + "self_attn.q_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.k, matrix(files, p + "self_attn.k_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.v, matrix(files, p + "self_attn.v_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.o, matrix(files, p + "self_attn.o_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.gate, matrix(files, p + "mlp.gate_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.up, matrix(files, p + "mlp.up_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.down, matrix(files, p + "mlp.down_proj.weight"));
    R1_ASSIGN_OR_RETURN(l.attn_norm, vector_f32(files, p + "input_layernorm.weight"));
    R1_ASSIGN_OR_RETURN(l.mlp_norm, vector_f32(files, p + "post_attention_layernorm.weight"));
    if (qkv_bias) {
      R1_ASSIGN_OR_RETURN(l.q_bias, vector_f32(files, p + "self_attn.q_proj.bias"));
      R1_ASSIGN_OR_RETURN(l.k_bias, vector_f32(files, p + "self_attn.k_proj.bias"));
      R1_ASSIGN_OR_RETURN(l.v_bias, vector_f32(files, p + "self_attn.v_proj.bias"));
    }
  }
  return w;
}

}  // namespace r1
