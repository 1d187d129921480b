// safetensors reading (parse_safetensors, SafetensorsFile) and writing.
// WeightFiles (folders, shard indexes) is in weight_files.cpp.
#include "format/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "format/detail/json_util.h"

namespace r1 {

namespace {

using nlohmann::json;

// The reference implementation's limit (safetensors crate MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;
constexpr size_t kHeaderLengthBytes = 8;

// dtype strings the format defines that DType cannot hold: parsed far enough
// to say "not supported" rather than "unknown".
constexpr std::string_view kKnownUnsupportedDtypes[] = {
    "BOOL",    "I16",     "U16",     "U32",     "U64", "F64", "F8_E4M3",
    "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",  "C64"};

constexpr std::string_view kSupportedDtypeList = "F32, F16, BF16, I8, U8, I32, I64";

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string range_string(size_t begin, size_t end) {
  // Built by appending: `"[" + std::to_string(...)` trips a GCC 12 -Wrestrict false positive.
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += ")";
  return s;
}

// Reads one non-negative integer of a header array; `what` names it in messages.
Result<uint64_t> header_uint(const json& v, const std::string& prefix, std::string_view what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    auto i = v.get<int64_t>();
    if (i < 0) {
      return invalid_argument(prefix + std::string(what) + " " + std::to_string(i) +
                              " is negative");
    }
    return static_cast<uint64_t>(i);
  }
  return invalid_argument(prefix + std::string(what) + " is not an integer (" + v.dump() + ")");
}

// One header entry -> TensorInfo, checked against the byte buffer's size.
Result<TensorInfo> parse_entry(const std::string& name, const json& entry, const uint8_t* buffer,
                               size_t buffer_size, std::string_view label) {
  const std::string prefix = std::string(label) + ": tensor " + name + ": ";
  if (!entry.is_object()) {
    return invalid_argument(prefix + "entry is a " + detail::json_type_name(entry) +
                            ", not an object");
  }
  TensorInfo t;
  t.name = name;
  t.file = std::string(label);

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) return invalid_argument(prefix + "missing \"dtype\"");
  if (!dtype_it->is_string()) return invalid_argument(prefix + "\"dtype\" is not a string");
  const auto dtype_str = dtype_it->get<std::string>();
  std::optional<DType> dtype = parse_safetensors_dtype(dtype_str);
  if (!dtype) {
    bool known = std::find(std::begin(kKnownUnsupportedDtypes), std::end(kKnownUnsupportedDtypes),
                           dtype_str) != std::end(kKnownUnsupportedDtypes);
    if (known) {
      return unimplemented(prefix + "dtype " + dtype_str + " is not supported (supported: " +
                           std::string(kSupportedDtypeList) + ")");
    }
    return invalid_argument(prefix + "unknown dtype \"" + dtype_str + "\"");
  }
  t.dtype = *dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) return invalid_argument(prefix + "missing \"shape\"");
  if (!shape_it->is_array()) return invalid_argument(prefix + "\"shape\" is not an array");
  // Element count with overflow checks: a hostile shape must not wrap around
  // to a small product that happens to match the byte range.
  uint64_t n_elements = 1;
  for (const json& dim_json : *shape_it) {
    R1_ASSIGN_OR_RETURN(uint64_t dim, header_uint(dim_json, prefix, "shape dimension"));
    if (dim > static_cast<uint64_t>(INT64_MAX)) {
      return invalid_argument(prefix + "shape dimension " + std::to_string(dim) + " is too large");
    }
    t.shape.push_back(static_cast<int64_t>(dim));
    // Every prefix product must fit int64 too: TensorInfo::n_elements() and
    // callers multiply dims as int64, and a later 0 dim would not undo the
    // overflow of [2^62, 3, 0].
    if (__builtin_mul_overflow(n_elements, dim, &n_elements) ||
        n_elements > static_cast<uint64_t>(INT64_MAX)) {
      return invalid_argument(prefix + "shape " + shape_it->dump() +
                              " has more elements than fit in 64 bits");
    }
  }
  uint64_t needed_bytes = 0;
  if (__builtin_mul_overflow(n_elements, static_cast<uint64_t>(dtype_size(t.dtype)),
                             &needed_bytes)) {
    return invalid_argument(prefix + "shape " + shape_string(t.shape) + " of " + dtype_str +
                            " needs more bytes than fit in 64 bits");
  }

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end()) return invalid_argument(prefix + "missing \"data_offsets\"");
  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    return invalid_argument(prefix + "\"data_offsets\" is not a [begin, end] pair");
  }
  R1_ASSIGN_OR_RETURN(uint64_t begin, header_uint((*offsets_it)[0], prefix, "data_offsets begin"));
  R1_ASSIGN_OR_RETURN(uint64_t end, header_uint((*offsets_it)[1], prefix, "data_offsets end"));
  if (begin > end) {
    return invalid_argument(prefix + "data_offsets begin " + std::to_string(begin) +
                            " is past end " + std::to_string(end));
  }
  if (end > buffer_size) {
    return data_loss(prefix + "data_offsets " + range_string(begin, end) +
                     " run past the end of the byte buffer (" + std::to_string(buffer_size) +
                     " bytes; truncated file?)");
  }
  if (end - begin != needed_bytes) {
    return invalid_argument(prefix + "data_offsets cover " + std::to_string(end - begin) +
                            " bytes but shape " + shape_string(t.shape) + " of " + dtype_str +
                            " needs " + std::to_string(needed_bytes));
  }
  t.offset = static_cast<size_t>(begin);
  t.n_bytes = static_cast<size_t>(end - begin);
  // buffer may be null only when buffer_size is 0, and then offset is 0 too.
  t.data = buffer == nullptr ? nullptr : buffer + t.offset;
  return t;
}

Status write_all(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return invalid_argument(std::string("write failed: ") + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return ok_status();
}

}  // namespace

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string_view safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
  }
  return "?";
}

std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (DType t :
       {DType::kF32, DType::kF16, DType::kBF16, DType::kI8, DType::kU8, DType::kI32, DType::kI64}) {
    if (name == safetensors_dtype_name(t)) return t;
  }
  return std::nullopt;
}

// Gaps: the reference implementation insists that the tensors tile the byte
// buffer exactly. We accept gaps between tensors and unused bytes at the end:
// every tensor is still checked to lie inside the buffer and not to overlap
// another, so a gap can never make us read wrong bytes, and a tensor lost from
// the header shows up as a missing tensor in validate_weights with a clearer
// message than "incomplete buffer".
Result<std::vector<TensorInfo>> parse_safetensors(const uint8_t* data, size_t size,
                                                  std::string_view label) {
  const std::string where(label);
  if (size < kHeaderLengthBytes) {
    return data_loss(where + ": truncated: " + std::to_string(size) +
                     " bytes, but a safetensors file starts with an 8-byte header length");
  }
  const uint64_t header_len = read_u64_le(data);
  if (header_len > kMaxHeaderBytes) {
    return out_of_range(where + ": header length " + std::to_string(header_len) +
                        " bytes is over the limit of " + std::to_string(kMaxHeaderBytes) +
                        " (100 MB)");
  }
  if (header_len > size - kHeaderLengthBytes) {
    return data_loss(where + ": header length " + std::to_string(header_len) +
                     " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  std::string_view header_text(reinterpret_cast<const char*>(data) + kHeaderLengthBytes,
                               static_cast<size_t>(header_len));
  R1_ASSIGN_OR_RETURN(json header, detail::parse_json(header_text, where + ": header"));
  if (!header.is_object()) {
    return invalid_argument(where + ": header is a JSON " + detail::json_type_name(header) +
                            ", not an object");
  }

  const size_t data_start = kHeaderLengthBytes + static_cast<size_t>(header_len);
  const uint8_t* buffer = data + data_start;
  const size_t buffer_size = size - data_start;

  std::vector<TensorInfo> tensors;
  tensors.reserve(header.size());
  try {
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) {
          return invalid_argument(where + ": \"__metadata__\" is a " +
                                  detail::json_type_name(entry) + ", not an object");
        }
        continue;
      }
      R1_ASSIGN_OR_RETURN(TensorInfo t, parse_entry(name, entry, buffer, buffer_size, label));
      tensors.push_back(std::move(t));
    }
  } catch (const json::exception& e) {  // not expected: every access is type-checked
    return invalid_argument(where + ": malformed header: " + e.what());
  }

  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.n_bytes != b.n_bytes) return a.n_bytes < b.n_bytes;
    return a.name < b.name;
  });
  // Sorted by start, so a tensor overlaps an earlier one exactly when it starts
  // before the furthest end seen so far. Empty tensors occupy no bytes.
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.n_bytes == 0) continue;
    if (furthest != nullptr && t.offset < furthest->offset + furthest->n_bytes) {
      return invalid_argument(where + ": tensors " + furthest->name + " " +
                              range_string(furthest->offset, furthest->offset + furthest->n_bytes) +
                              " and " + t.name + " " +
                              range_string(t.offset, t.offset + t.n_bytes) + " overlap");
    }
    if (furthest == nullptr || t.offset + t.n_bytes > furthest->offset + furthest->n_bytes) {
      furthest = &t;
    }
  }
  return tensors;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  auto file = std::make_unique<SafetensorsFile>();
  R1_ASSIGN_OR_RETURN(file->file_, MappedFile::open(path));
  R1_ASSIGN_OR_RETURN(file->tensors_,
                      parse_safetensors(file->file_.data(), file->file_.size(), path));
  return file;
}

Status write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string prefix = path + ": tensor " + t.name + ": ";
    if (t.name == "__metadata__") return invalid_argument(prefix + "the name is reserved");
    if (header.contains(t.name)) return invalid_argument(prefix + "written twice");
    uint64_t n_elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return invalid_argument(prefix + "negative dimension " + std::to_string(d));
      if (__builtin_mul_overflow(n_elements, static_cast<uint64_t>(d), &n_elements)) {
        return invalid_argument(prefix + "shape too large");
      }
    }
    uint64_t n_bytes = 0;
    if (__builtin_mul_overflow(n_elements, static_cast<uint64_t>(dtype_size(t.dtype)), &n_bytes) ||
        n_bytes != t.bytes.size()) {
      return invalid_argument(
          prefix + std::to_string(t.bytes.size()) + " bytes given, shape " + shape_string(t.shape) +
          " of " + std::string(safetensors_dtype_name(t.dtype)) + " needs " +
          std::to_string(n_elements) + " x " + std::to_string(dtype_size(t.dtype)));
    }
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + n_bytes}}};
    offset += n_bytes;
  }
  std::string text = header.dump();
  // Pad with spaces (valid JSON whitespace) so 8 + N is a multiple of 8.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(text.size() >> (8 * i));

  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    return invalid_argument(path + ": cannot create a temporary file: " + std::strerror(errno));
  }
  ::fchmod(fd, 0644);  // mkstemp creates 0600; weights are ordinary readable files
  Status st = write_all(fd, len_bytes, sizeof len_bytes);
  if (st.ok()) st = write_all(fd, text.data(), text.size());
  for (size_t i = 0; st.ok() && i < tensors.size(); ++i) {
    st = write_all(fd, tensors[i].bytes.data(), tensors[i].bytes.size());
  }
  if (st.ok() && ::fsync(fd) != 0) st = invalid_argument(std::string("fsync: ") + strerror(errno));
  if (::close(fd) != 0 && st.ok()) st = invalid_argument(std::string("close: ") + strerror(errno));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = invalid_argument(std::string("rename: ") + std::strerror(errno));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st.with_context(path);
  }
  return ok_status();
}

}  // namespace r1
