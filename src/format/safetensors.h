// safetensors files (../shared/reference/model-facts.md §4.1): parsing of the
// header against the file size, mmap'd tensor data, sharded folders through
// model.safetensors.index.json, and a writer for generated test models.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
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

  int64_t n_elements() const;
};

// Parses a whole safetensors image (header length, JSON header, byte buffer)
// without touching the tensor bytes. `label` names the file in messages.
// Rejects: truncated files, header length past the end, headers over 100 MB,
// non-JSON or non-object headers, unknown or unsupported dtypes, bad shapes,
// offsets out of range, overlapping tensors, byte counts that disagree with
// shape x dtype. Never reads outside [data, data + size).
Result<std::vector<TensorInfo>> parse_safetensors(const uint8_t* data, size_t size,
                                                  std::string_view label);

// One mmap'd safetensors file.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  MappedFile file_;
  std::vector<TensorInfo> tensors_;
};

// The weights of a Hugging Face folder: model.safetensors, or the shards named
// by model.safetensors.index.json (names always taken from the index).
class WeightFiles {
 public:
  static Result<WeightFiles> open_folder(const std::string& dir);

  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, TensorInfo, std::less<>>& all() const { return by_name_; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorInfo, std::less<>> by_name_;
};

// A tensor to write; `bytes` holds n_elements * dtype_size bytes, little-endian.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes one safetensors file (header padded to 8 bytes, {"format":"pt"}
// metadata), tensors laid out in the given order.
Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace r1
