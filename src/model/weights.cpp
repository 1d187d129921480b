#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <string>

#include "format/gguf_blocks.h"
#include "format/weight_validation.h"
#include "obs/progress.h"

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

// Row `r` of tensor `t` in HF order, as f32: dequantised for block formats,
// taken from llama.cpp's RoPE row order for Llama GGUF Q/K.
void read_row(const TensorInfo& t, int64_t r, float* out) {
  const int64_t cols = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
  int64_t fr = r;
  if (const int64_t hd = t.rope_permuted_head_dim; hd > 0) {
    const int64_t half = hd / 2, in_head = r % hd;
    fr = r - in_head + 2 * (in_head % half) + in_head / half;
  }
  if (t.ggml_type) {
    const int64_t row_bytes = static_cast<int64_t>(t.n_bytes) / (t.n_elements() / cols);
    dequantize_gguf(*t.ggml_type, t.data + fr * row_bytes, cols, out);
    return;
  }
  const kernels::MatrixView view{t.data, t.dtype, t.n_elements() / cols, cols};
  for (int64_t c = 0; c < cols; ++c) out[c] = kernels::matrix_at(view, fr, c);
}

// Converts tensors at bind (see bind_weights).
struct Materializer {
  const WeightPrecision& precision;
  ThreadPool* pool;
  std::vector<kernels::OwnedMatrix>& owned;
  Progress* progress;

  Result<kernels::MatrixView> operator()(const TensorInfo& t, std::optional<DType> want) {
    const int64_t rows = t.shape[0], cols = t.shape[1];
    DType to = want.value_or(t.ggml_type ? DType::kQ8 : t.dtype);
    int64_t group = precision.int8_group_size;
    if (to == DType::kQ8 && group == 0 && t.ggml_type) group = kernels::kQuantBlock;
    if (to == DType::kQ8 && group != 0 &&
        (group % kernels::kQuantBlock != 0 || kernels::quant_padded_cols(cols) % group != 0)) {
      return invalid_argument("tensor " + t.name + ": int8 group size " + std::to_string(group) +
                              " does not divide its rows of " + std::to_string(cols));
    }
    const kernels::RowSource src = [&t](int64_t r, float* out) { read_row(t, r, out); };
    try {
      if (to == DType::kQ8 || to == DType::kQ4) {
        owned.push_back(kernels::quantize_rows(rows, cols, src, to, group, *pool));
      } else if (to == DType::kF32 || to == DType::kBF16 || to == DType::kF16) {
        owned.push_back(kernels::cast_rows(rows, cols, src, to, *pool));
      } else {
        return invalid_argument("weights cannot be converted to " + std::string(dtype_name(to)));
      }
      if (progress != nullptr) progress->add(static_cast<int64_t>(t.n_bytes));
    } catch (const std::bad_alloc&) {
      return resource_exhausted("out of memory converting tensor " + t.name + " [" +
                                std::to_string(rows) + ", " + std::to_string(cols) + "] to " +
                                std::string(dtype_name(to)));
    }
    return owned.back().view();
  }
};

Result<kernels::MatrixView> matrix(const WeightFiles& files, const std::string& name,
                                   Materializer& convert, std::optional<DType> want) {
  R1_ASSIGN_OR_RETURN(const TensorInfo* t, find(files, name));
  if (t->shape.size() != 2) return invalid_argument("tensor " + name + ": not a matrix");
  if (!t->viewable()) return convert(*t, want);
  return kernels::MatrixView{t->data, t->dtype, t->shape[0], t->shape[1]};
}

Result<std::vector<float>> vector_f32(const WeightFiles& files, const std::string& name) {
  R1_ASSIGN_OR_RETURN(const TensorInfo* t, find(files, name));
  const int64_t n = t->n_elements();
  std::vector<float> out(static_cast<size_t>(n));
  if (!t->viewable()) {
    TensorInfo row = *t;
    row.shape = {n};
    row.rope_permuted_head_dim = 0;
    read_row(row, 0, out.data());
    return out;
  }
  kernels::MatrixView view{t->data, t->dtype, 1, n};
  for (int64_t i = 0; i < n; ++i) out[i] = kernels::matrix_at(view, 0, i);
  return out;
}

}  // namespace

Result<ModelWeights> bind_weights(const ModelConfig& config, bool qkv_bias,
                                  const WeightFiles& files, const WeightPrecision& precision,
                                  int n_threads, const LayerSink& each_layer) {
  R1_RETURN_IF_ERROR(validate_weights(config, files));
  ModelWeights w;
  std::optional<ThreadPool> pool;
  std::optional<Progress> progress;
  int64_t to_convert = 0;
  for (const ExpectedTensor& e : expected_tensors(config)) {
    const TensorInfo* t = files.find(e.name);
    if (t != nullptr && !t->viewable() && t->shape.size() == 2) {
      to_convert += static_cast<int64_t>(t->n_bytes);
    }
  }
  if (to_convert > 0) {
    pool.emplace(n_threads);
    progress.emplace("converting " + files.source() + "'s weights", to_convert);
  }
  // Views point at the OwnedMatrix buffers, which keep their address when
  // the vector grows.
  w.owned.reserve(static_cast<size_t>(config.n_layers) * 7 + 2);
  Materializer convert{precision, pool ? &*pool : nullptr, w.owned,
                       progress ? &*progress : nullptr};
  const std::optional<DType> layers = precision.layers;
  // A converted embedding gets the head's dtype unless one is asked for the
  // embedding itself (tied, it serves as the head too).
  std::optional<DType> embed = precision.embed;
  if (!embed) embed = precision.lm_head_dtype();
  R1_ASSIGN_OR_RETURN(w.embed, matrix(files, "model.embed_tokens.weight", convert, embed));
  if (config.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    R1_ASSIGN_OR_RETURN(w.lm_head,
                        matrix(files, "lm_head.weight", convert, precision.lm_head_dtype()));
  }
  R1_ASSIGN_OR_RETURN(w.final_norm, vector_f32(files, "model.norm.weight"));
  w.layers.resize(static_cast<size_t>(config.n_layers));
  for (int64_t i = 0; i < config.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[i];
    const size_t owned_before = w.owned.size();
    R1_ASSIGN_OR_RETURN(l.q, matrix(files, p + "self_attn.q_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.k, matrix(files, p + "self_attn.k_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.v, matrix(files, p + "self_attn.v_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.o, matrix(files, p + "self_attn.o_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.gate, matrix(files, p + "mlp.gate_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.up, matrix(files, p + "mlp.up_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.down, matrix(files, p + "mlp.down_proj.weight", convert, layers));
    R1_ASSIGN_OR_RETURN(l.attn_norm, vector_f32(files, p + "input_layernorm.weight"));
    R1_ASSIGN_OR_RETURN(l.mlp_norm, vector_f32(files, p + "post_attention_layernorm.weight"));
    if (qkv_bias) {
      R1_ASSIGN_OR_RETURN(l.q_bias, vector_f32(files, p + "self_attn.q_proj.bias"));
      R1_ASSIGN_OR_RETURN(l.k_bias, vector_f32(files, p + "self_attn.k_proj.bias"));
      R1_ASSIGN_OR_RETURN(l.v_bias, vector_f32(files, p + "self_attn.v_proj.bias"));
    }
    if (each_layer) {
      R1_RETURN_IF_ERROR(each_layer(i, l));
      // This layer's copies are the last ones made; earlier views keep
      // their buffers.
      w.owned.erase(w.owned.begin() + static_cast<std::ptrdiff_t>(owned_before), w.owned.end());
      l = LayerWeights{};
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

bool needs_conversion(const kernels::MatrixView& view, std::optional<DType> to) {
  return to && *to != view.dtype;
}

Status convert(kernels::MatrixView& view, std::optional<DType> to, int64_t group,
               std::vector<kernels::OwnedMatrix>& owned, ThreadPool& pool, Progress& progress) {
  if (!needs_conversion(view, to)) return ok_status();
  const int64_t source_bytes = kernels::matrix_bytes(view);
  // A matrix converted at bind lives in `owned` (anonymous memory): its
  // pages must not be released below, only a file's.
  const bool from_file = std::none_of(owned.begin(), owned.end(), [&](const auto& m) {
    return static_cast<const void*>(m.data.data()) == view.data;
  });
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
  if (from_file) release_pages(view.data, view.rows * kernels::matrix_row_bytes(view));
  view = owned.back().view();
  progress.add(source_bytes);
  return ok_status();
}

}  // namespace

Status convert_weights(ModelWeights& w, const WeightPrecision& p, ThreadPool& pool) {
  const int64_t g = p.int8_group_size;
  // Views point at the OwnedMatrix buffers, which keep their address when
  // the vector grows (the buffers move, their storage does not).
  w.owned.reserve(w.owned.size() + w.layers.size() * 7 + 2);
  const bool tied = w.lm_head.data == w.embed.data;
  int64_t total = 0;  // what the progress counts: the source bytes of each conversion
  for (const LayerWeights& l : w.layers) {
    for (const kernels::MatrixView* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      if (needs_conversion(*m, p.layers)) total += kernels::matrix_bytes(*m);
    }
  }
  if (needs_conversion(w.embed, p.embed)) total += kernels::matrix_bytes(w.embed);
  if (needs_conversion(w.lm_head, p.lm_head_dtype())) total += kernels::matrix_bytes(w.lm_head);
  if (total == 0) return ok_status();
  std::string to = p.layers ? std::string(dtype_name(*p.layers)) : "the dtypes asked for";
  Progress progress("converting weights to " + to, total);
  for (LayerWeights& l : w.layers) {
    for (kernels::MatrixView* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      R1_RETURN_IF_ERROR(convert(*m, p.layers, g, w.owned, pool, progress));
    }
  }
  const kernels::MatrixView file_embed = w.embed;
  R1_RETURN_IF_ERROR(convert(w.embed, p.embed, g, w.owned, pool, progress));
  if (tied) {
    const std::optional<DType> head = p.lm_head_dtype();
    if (head && *head == w.embed.dtype) {
      w.lm_head = w.embed;  // one copy serves both
    } else {
      w.lm_head = file_embed;
      R1_RETURN_IF_ERROR(convert(w.lm_head, head, g, w.owned, pool, progress));
    }
  } else {
    R1_RETURN_IF_ERROR(convert(w.lm_head, p.lm_head_dtype(), g, w.owned, pool, progress));
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
