// GGUF files (../shared/reference/model-facts.md §4.2), the format of
// llama.cpp, Ollama and LM Studio: the header parser (versions 2 and 3,
// metadata of every value type, arrays included, tensor infos, alignment),
// mmap'd files, split sets (-00001-of-0000N.gguf), and the ggml tensor types
// with their block geometry. Dequantisation of the block types is in
// format/gguf_blocks.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "format/mapped_file.h"

namespace r1 {

// ggml's tensor type ids (ggml.h's enum ggml_type). Only the ones r1serve
// reads are named; others are reported by number and name.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

// Elements per block and bytes per block of a ggml type (f32: 1 and 4), and
// whether r1serve can read its values (one of GgmlType's). Every type ggml
// stores in files has a size, so a file holding types r1serve cannot read
// (IQ4_XS, TQ1_0, ...) still parses and `inspect` shows it; loading such a
// tensor's values is refused by name. nullopt for an id ggml does not
// define.
struct GgmlBlock {
  int64_t elements = 0;
  int64_t bytes = 0;
  bool readable = false;
};
std::optional<GgmlBlock> ggml_block(uint32_t type);
// "Q4_K", "F16", "IQ4_XS", ...; "type N" for an id ggml does not define.
std::string ggml_type_name(uint32_t type);

// A metadata value. Scalars keep their declared type; integers are also
// readable through as_int() when they fit int64. Arrays hold their items
// (arrays of arrays are allowed, as in the format).
struct GgufValue {
  enum class Type : uint32_t {
    kU8 = 0,
    kI8 = 1,
    kU16 = 2,
    kI16 = 3,
    kU32 = 4,
    kI32 = 5,
    kF32 = 6,
    kBool = 7,
    kString = 8,
    kArray = 9,
    kU64 = 10,
    kI64 = 11,
    kF64 = 12,
  };
  Type type = Type::kU8;
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0.0;  // f32, f64
  std::string s;
  Type item_type = Type::kU8;  // arrays
  std::vector<GgufValue> items;

  bool is_integer() const;
  bool is_float() const;
  // An integer type (signed or unsigned) whose value fits int64.
  std::optional<int64_t> as_int() const;
  // Any integer or float.
  std::optional<double> as_double() const;
};
std::string_view gguf_value_type_name(GgufValue::Type t);

// One tensor as the file describes it. dims are ggml's order: dims[0] is the
// contiguous axis (an HF [out, in] matrix is [in, out] here).
struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;  // from the start of the data section
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the image parsed
  int64_t n_elements() const;
};

// OK where r1serve reads `t`'s values; otherwise UNIMPLEMENTED naming the
// tensor, its type and the types r1serve reads (`label`: the file).
Status require_readable(std::string_view label, const GgufTensor& t);

struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = 32;
  size_t data_offset = 0;  // where the tensor data section starts
  std::map<std::string, GgufValue, std::less<>> metadata;
  std::vector<GgufTensor> tensors;  // in file order
};

// Parses a GGUF image without touching tensor bytes beyond bounds checks.
// Rejects: bad magic, a big-endian file, versions other than 2 and 3 (1 is
// UNIMPLEMENTED), truncation anywhere in the header (DATA_LOSS), counts or
// string lengths that cannot fit in the file, unknown value types, a key or
// tensor name twice, an alignment that is not a power of two, more than 4
// dims, element counts that overflow, tensor type ids ggml does not define
// (UNIMPLEMENTED, naming the id and tensor), rows that are not a whole
// number of blocks, offsets not a multiple of the alignment, overlapping
// tensors (INVALID_ARGUMENT) and tensor bytes past the end (DATA_LOSS).
// Every message starts with `label` and names the key or tensor involved.
Result<GgufHeader> parse_gguf(const uint8_t* data, size_t size, std::string_view label);

// One mmap'd GGUF file.
class GgufFile {
 public:
  // NOT_FOUND for a missing file; otherwise parse_gguf's errors with the
  // path as the label.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const GgufHeader& header() const { return header_; }
  const GgufValue* find(std::string_view key) const;
  // Typed lookups; INVALID_ARGUMENT naming the key when present with another
  // type, NOT_FOUND when absent.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_double(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;

 private:
  MappedFile file_;
  GgufHeader header_;
};

// A model stored as one GGUF file or as a split set. `first` may name the
// first file of a set (NAME-00001-of-0000N.gguf): the others are opened from
// the same folder. Metadata is the first file's; tensors are the union.
// Errors: a missing split (NOT_FOUND naming it), split.no / split.count
// disagreeing with the file names, a tensor in two splits, or a tensor
// count that disagrees with split.tensors.count (INVALID_ARGUMENT).
class GgufModel {
 public:
  static Result<std::shared_ptr<GgufModel>> open(const std::string& first);

  const GgufFile& first() const { return *files_.front(); }
  const std::vector<std::unique_ptr<GgufFile>>& files() const { return files_; }
  const GgufTensor* find_tensor(std::string_view name) const;
  const std::map<std::string, const GgufTensor*, std::less<>>& tensors() const { return tensors_; }
  // Bytes of tensor data over all files.
  uint64_t tensor_bytes() const;

 private:
  std::vector<std::unique_ptr<GgufFile>> files_;
  std::map<std::string, const GgufTensor*, std::less<>> tensors_;
};

// True for a path that names a GGUF file (".gguf", any case).
bool is_gguf_path(std::string_view path);

}  // namespace r1
