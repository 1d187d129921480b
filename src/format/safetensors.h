// safetensors files (../shared/reference/model-facts.md §4.1): parsing of the
// header against the file size, mmap'd tensor data, sharded folders through
// model.safetensors.index.json, and a writer for generated test models.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "format/gguf.h"
#include "format/mapped_file.h"

namespace r1 {

// One tensor as the file describes it. `data` points into a mapping owned by
// the SafetensorsFile / WeightFiles it came from and lives as long as that.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first, row-major
  size_t offset = 0;           // from the start of the byte buffer
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;
  std::string file;  // file name it lives in, for messages
  // GGUF tensors in a block format (Q4_K, Q8_0, ...): the ggml type, to be
  // dequantised row by row (format/gguf_blocks.h); `dtype` is then kU8 and
  // n_bytes the blocks' size. Unset for plain element types.
  std::optional<uint32_t> ggml_type;
  // Llama GGUF attn_q / attn_k: llama.cpp's converter stored each head's
  // rows in interleaved-RoPE order; this is the head size to undo it with
  // (HF row h*hd + j*hd/2 + i is file row h*hd + 2i + j). 0: HF order.
  int64_t rope_permuted_head_dim = 0;

  int64_t n_elements() const;
  // Whether the data can be used in place as a row-major `dtype` array.
  bool viewable() const { return !ggml_type && rope_permuted_head_dim == 0; }
};

// The header's spelling of a dtype: "F32", "F16", "BF16", "I8", "U8", "I32", "I64".
std::string_view safetensors_dtype_name(DType t);

// Inverse of safetensors_dtype_name; nullopt for every other string.
std::optional<DType> parse_safetensors_dtype(std::string_view name);

// Parses a whole safetensors image (header length, JSON header, byte buffer)
// without touching the tensor bytes. `label` names the file in messages.
// Rejects: truncated files, header length past the end, headers over 100 MB,
// non-JSON or non-object headers, unknown or unsupported dtypes, bad shapes,
// offsets out of range, overlapping tensors, byte counts that disagree with
// shape x dtype, the same key twice. Never reads outside [data, data + size).
// Gaps between tensors and unused trailing bytes are accepted (see the .cpp).
// Tensors come back sorted by offset; `data` points into [data, data + size)
// and `file` is `label`. Codes: DATA_LOSS for truncation (under 8 bytes, header
// or tensor bytes past the end), OUT_OF_RANGE for a header over the limit,
// UNIMPLEMENTED for a dtype the format defines but DType cannot hold (F64,
// F8_E4M3, BOOL, ...), INVALID_ARGUMENT for everything else. Every message
// starts with `label` and names the tensor where one is involved.
Result<std::vector<TensorInfo>> parse_safetensors(const uint8_t* data, size_t size,
                                                  std::string_view label);

// One mmap'd safetensors file.
class SafetensorsFile {
 public:
  // NOT_FOUND for a missing file; otherwise the errors of parse_safetensors,
  // with the path as the label.
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::vector<TensorInfo> tensors_;
};

// The weights of a Hugging Face folder: model.safetensors, or the shards named
// by model.safetensors.index.json (names always taken from the index).
class WeightFiles {
 public:
  // With an index: opens every distinct shard its weight_map names (plain file
  // names inside `dir` only), checks each listed tensor is in its shard and no
  // tensor is in two shards; tensors a shard holds beyond the map are kept.
  // Without one: model.safetensors. Neither: NOT_FOUND naming the folder.
  static Result<WeightFiles> open_folder(const std::string& dir);

  // The tensors of a GGUF model under their Hugging Face names, shapes in
  // HF order (outermost first). F32/F16/BF16 tensors are views; block types
  // carry ggml_type. `llama_rope_permuted` marks attn_q / attn_k with
  // `head_dim` (model-facts.md §4.2). GGUF tensors without an HF name
  // (rope_freqs.weight) are kept under their own names. INVALID_ARGUMENT for
  // a tensor name the mapping does not know.
  static Result<WeightFiles> from_gguf(std::shared_ptr<const GgufModel> model,
                                       bool llama_rope_permuted, int64_t head_dim);

  // The file the tensors were listed by, for messages: <dir>/model.safetensors
  // or <dir>/model.safetensors.index.json.
  const std::string& source() const { return source_; }
  // Paths of the opened safetensors files, in the order they were opened.
  std::vector<std::string> file_paths() const;

  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, TensorInfo, std::less<>>& all() const { return by_name_; }

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::shared_ptr<const GgufModel> gguf_;
  std::map<std::string, TensorInfo, std::less<>> by_name_;
};

// A tensor to write; `bytes` holds n_elements * dtype_size bytes, little-endian.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes one safetensors file (header padded with spaces so the byte buffer
// starts 8-byte aligned, {"format":"pt"} metadata), tensors laid out in the
// given order with no gaps. Writes a temporary file in the same folder and
// renames it over `path`, so a reader never sees a half-written file.
// INVALID_ARGUMENT for a byte count that disagrees with shape x dtype, a
// negative dimension, or a repeated or reserved ("__metadata__") name.
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace r1
