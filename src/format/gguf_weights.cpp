// WeightFiles::from_gguf: a GGUF model's tensors under Hugging Face names
// (model-facts.md §4.2's table), shapes reversed to HF order.
#include <algorithm>
#include <charconv>
#include <utility>

#include "format/gguf.h"
#include "format/safetensors.h"

namespace r1 {

namespace {

struct NamePair {
  std::string_view gguf;
  std::string_view hf;
};

constexpr NamePair kGlobal[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

constexpr NamePair kLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

// Tensors llama.cpp writes that have no HF counterpart; kept as they are.
constexpr std::string_view kExtra[] = {"rope_freqs.weight"};

// "blk.N.rest" -> {"model.layers.N." + HF(rest), is q/k}; nullopt otherwise.
std::optional<std::pair<std::string, bool>> hf_name(std::string_view name) {
  for (const NamePair& p : kGlobal) {
    if (name == p.gguf) return std::pair{std::string(p.hf), false};
  }
  constexpr std::string_view kBlk = "blk.";
  if (name.substr(0, kBlk.size()) != kBlk) return std::nullopt;
  const std::string_view rest = name.substr(kBlk.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  int64_t layer = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + dot, layer);
  if (ec != std::errc() || end != rest.data() + dot || layer < 0) return std::nullopt;
  const std::string_view tail = rest.substr(dot + 1);
  for (const NamePair& p : kLayer) {
    if (tail == p.gguf) {
      const bool qk = tail == "attn_q.weight" || tail == "attn_k.weight";
      return std::pair{"model.layers." + std::to_string(layer) + "." + std::string(p.hf), qk};
    }
  }
  return std::nullopt;
}

}  // namespace

Result<WeightFiles> WeightFiles::from_gguf(std::shared_ptr<const GgufModel> model,
                                           bool llama_rope_permuted, int64_t head_dim) {
  WeightFiles w;
  w.source_ = model->first().path();
  for (const auto& file : model->files()) {
    for (const GgufTensor& tensor : file->header().tensors) {
      const std::string& name = tensor.name;
      const GgufTensor* t = &tensor;
      std::string hf;
      bool qk = false;
      if (auto mapped = hf_name(name)) {
        hf = std::move(mapped->first);
        qk = mapped->second;
      } else if (std::find(std::begin(kExtra), std::end(kExtra), name) != std::end(kExtra)) {
        hf = name;
      } else {
        return invalid_argument(w.source_ + ": tensor " + name +
                                " is not one of a Qwen2 or Llama decoder's");
      }
      TensorInfo info;
      info.name = hf;
      info.shape.assign(t->dims.rbegin(), t->dims.rend());
      info.offset = file->header().data_offset + static_cast<size_t>(t->offset);  // in the file
      info.n_bytes = t->n_bytes;
      info.data = t->data;
      info.file = file->path();
      switch (static_cast<GgmlType>(t->type)) {
        case GgmlType::kF32:
          info.dtype = DType::kF32;
          break;
        case GgmlType::kF16:
          info.dtype = DType::kF16;
          break;
        case GgmlType::kBF16:
          info.dtype = DType::kBF16;
          break;
        default: {
          R1_RETURN_IF_ERROR(require_readable(w.source_, *t));
          info.dtype = DType::kU8;
          info.ggml_type = t->type;
          break;
        }
      }
      if (qk && llama_rope_permuted) {
        if (head_dim <= 0 || head_dim % 2 != 0 || info.shape[0] % head_dim != 0) {
          return invalid_argument(
              w.source_ + ": tensor " + name + " has " + std::to_string(info.shape[0]) +
              " rows, not a whole number of heads of " + std::to_string(head_dim));
        }
        info.rope_permuted_head_dim = head_dim;
      }
      if (!w.by_name_.emplace(hf, std::move(info)).second) {
        return invalid_argument(w.source_ + ": two tensors map to " + hf);
      }
    }
  }
  w.gguf_ = std::move(model);
  return w;
}

}  // namespace r1
