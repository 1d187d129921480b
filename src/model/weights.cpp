#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>
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

std::optional<DType> WeightPrecision::lm_head_dtype() const {
  if (lm_head) return lm_head;
  if (layers == DType::kQ4) return DType::kQ8;
  return layers;
}

namespace {

void release_pages(const void* data, int64_t bytes) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const auto end =
      (reinterpret_cast<uintptr_t>(data) + static_cast<uintptr_t>(bytes)) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status convert(kernels::MatrixView& view, std::optional<DType> to, int64_t group,
               std::vector<kernels::OwnedMatrix>& owned, ThreadPool& pool) {
  if (!to || *to == view.dtype) return ok_status();
  const bool quantised_source = view.dtype == DType::kQ8 || view.dtype == DType::kQ4;
  if (quantised_source) return invalid_argument("weights are already quantised");
  try {
    if (*to == DType::kQ8 || *to == DType::kQ4) {
      const int64_t padded = kernels::quant_padded_cols(view.cols);
      if (*to == DType::kQ8 && group != 0 &&
          (group % kernels::kQuantBlock != 0 || padded % group)) {
        return invalid_argument("int8 group size " + std::to_string(group) +
                                " must be a multiple of 32 that divides every row length "
                                "(rounded up to 32; this model has one of " +
                                std::to_string(padded) + ")");
      }
      owned.push_back(kernels::quantize_matrix(view, *to, group, pool));
    } else if (*to == DType::kF32 || *to == DType::kBF16 || *to == DType::kF16) {
      owned.push_back(kernels::cast_matrix(view, *to, pool));
    } else {
      return invalid_argument("weights cannot be converted to " + std::string(dtype_name(*to)));
    }
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory converting a [" + std::to_string(view.rows) + ", " +
                              std::to_string(view.cols) + "] matrix to " +
                              std::string(dtype_name(*to)));
  }
  // The file's copy is not read again: let the kernel drop its pages now
  // rather than keep a 7B model resident twice (the mapping is read-only
  // and file-backed, so this only discards clean page-cache references).
  release_pages(view.data, view.rows * kernels::matrix_row_bytes(view));
  view = owned.back().view();
  return ok_status();
}

}  // namespace

Status convert_weights(ModelWeights& w, const WeightPrecision& p, ThreadPool& pool) {
  const int64_t g = p.int8_group_size;
  // Views point at the OwnedMatrix buffers, which keep their address when
  // the vector grows (the buffers move, their storage does not).
  w.owned.reserve(w.layers.size() * 7 + 2);
  const bool tied = w.lm_head.data == w.embed.data;
  for (LayerWeights& l : w.layers) {
    for (kernels::MatrixView* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      R1_RETURN_IF_ERROR(convert(*m, p.layers, g, w.owned, pool));
    }
  }
  const kernels::MatrixView file_embed = w.embed;
  R1_RETURN_IF_ERROR(convert(w.embed, p.embed, g, w.owned, pool));
  if (tied) {
    const std::optional<DType> head = p.lm_head_dtype();
    if (head && *head == w.embed.dtype) {
      w.lm_head = w.embed;  // one copy serves both
    } else {
      w.lm_head = file_embed;
      R1_RETURN_IF_ERROR(convert(w.lm_head, head, g, w.owned, pool));
    }
  } else {
    R1_RETURN_IF_ERROR(convert(w.lm_head, p.lm_head_dtype(), g, w.owned, pool));
  }
  return ok_status();
}

int64_t weight_bytes_per_token(const ModelWeights& w) {
  int64_t bytes = kernels::matrix_bytes(w.lm_head);
  for (const LayerWeights& l : w.layers) {
    for (const kernels::MatrixView* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      bytes += kernels::matrix_bytes(*m);
    }
  }
  return bytes;
}

}  // namespace r1
