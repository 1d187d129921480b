// GGUF header parsing, GgufFile and split sets (GgufModel).
#include "format/gguf.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <regex>
#include <utility>

namespace r1 {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
// Nesting of arrays of arrays: the format allows it, nothing uses more
// than one level; the bound stops a crafted file from recursing deeply.
constexpr int kMaxArrayDepth = 8;
// Metadata array items in one file. Real files hold well under a million
// (a 152k vocabulary, its token types, 280k merges); each item costs about
// 100 bytes in memory, so the cap keeps a crafted file of one-byte items
// from needing a hundred times its size.
constexpr uint64_t kMaxArrayItems = uint64_t{16} << 20;

struct TypeRow {
  uint32_t id;
  std::string_view name;
  int64_t elements;
  int64_t bytes;
  bool readable;
};

// ggml.h's type ids with ggml-common.h's block sizes (the ids ggml retired,
// 4, 5 and 31-33, 36-38, are unknown). Q8_1 and Q8_K are ggml's activation
// blocks, listed for completeness.
constexpr TypeRow kTypes[] = {
    {0, "F32", 1, 4, true},          {1, "F16", 1, 2, true},
    {2, "Q4_0", 32, 18, true},       {3, "Q4_1", 32, 20, true},
    {6, "Q5_0", 32, 22, true},       {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},       {9, "Q8_1", 32, 36, false},
    {10, "Q2_K", 256, 84, true},     {11, "Q3_K", 256, 110, true},
    {12, "Q4_K", 256, 144, true},    {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},    {15, "Q8_K", 256, 292, false},
    {16, "IQ2_XXS", 256, 66, false}, {17, "IQ2_XS", 256, 74, false},
    {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, false},   {21, "IQ3_S", 256, 110, false},
    {22, "IQ2_S", 256, 82, false},   {23, "IQ4_XS", 256, 136, false},
    {24, "I8", 1, 1, false},         {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},        {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},        {29, "IQ1_M", 256, 56, false},
    {30, "BF16", 1, 2, true},        {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},   {39, "MXFP4", 32, 17, false},
    {40, "NVFP4", 64, 36, false},    {41, "Q1_0", 128, 18, false},
    {42, "Q2_0", 64, 18, false},
};

const TypeRow* type_row(uint32_t id) {
  for (const TypeRow& r : kTypes) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

// A bounds-checked little-endian cursor over the header.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, std::string_view label)
      : data_(data), size_(size), label_(label) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  Status truncated(std::string_view what) const {
    return data_loss(std::string(label_) + ": truncated: the file ends inside " +
                     std::string(what) + " (at byte " + std::to_string(pos_) + " of " +
                     std::to_string(size_) + ")");
  }

  template <typename T>
  Result<T> read(std::string_view what) {
    if (left() < sizeof(T)) return truncated(what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string> read_string(std::string_view what) {
    R1_ASSIGN_OR_RETURN(uint64_t n, read<uint64_t>(what));
    if (n > left()) {
      return data_loss(std::string(label_) + ": " + std::string(what) + ": a string of " +
                       std::to_string(n) + " bytes at byte " + std::to_string(pos_) +
                       " runs past the end of the file");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string_view label_;
};

size_t min_value_bytes(GgufValue::Type t) {
  switch (t) {
    case GgufValue::Type::kU8:
    case GgufValue::Type::kI8:
    case GgufValue::Type::kBool:
      return 1;
    case GgufValue::Type::kU16:
    case GgufValue::Type::kI16:
      return 2;
    case GgufValue::Type::kU32:
    case GgufValue::Type::kI32:
    case GgufValue::Type::kF32:
      return 4;
    case GgufValue::Type::kString:
    case GgufValue::Type::kU64:
    case GgufValue::Type::kI64:
    case GgufValue::Type::kF64:
      return 8;
    case GgufValue::Type::kArray:
      return 12;
  }
  return 1;
}

bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufValue::Type::kF64);
}

// One scalar of type T, widened into `slot` (GgufValue's u, i or f).
template <typename T, typename Slot>
Status read_scalar(Reader& r, const std::string& what, Slot& slot) {
  R1_ASSIGN_OR_RETURN(T x, r.read<T>(what));
  slot = static_cast<Slot>(x);
  return ok_status();
}

Result<GgufValue> read_value(Reader& r, GgufValue::Type type, const std::string& what,
                             std::string_view label, int depth, uint64_t& items_left) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValue::Type::kU8:
      R1_RETURN_IF_ERROR(read_scalar<uint8_t>(r, what, v.u));
      break;
    case GgufValue::Type::kI8:
      R1_RETURN_IF_ERROR(read_scalar<int8_t>(r, what, v.i));
      break;
    case GgufValue::Type::kU16:
      R1_RETURN_IF_ERROR(read_scalar<uint16_t>(r, what, v.u));
      break;
    case GgufValue::Type::kI16:
      R1_RETURN_IF_ERROR(read_scalar<int16_t>(r, what, v.i));
      break;
    case GgufValue::Type::kU32:
      R1_RETURN_IF_ERROR(read_scalar<uint32_t>(r, what, v.u));
      break;
    case GgufValue::Type::kI32:
      R1_RETURN_IF_ERROR(read_scalar<int32_t>(r, what, v.i));
      break;
    case GgufValue::Type::kU64:
      R1_RETURN_IF_ERROR(read_scalar<uint64_t>(r, what, v.u));
      break;
    case GgufValue::Type::kI64:
      R1_RETURN_IF_ERROR(read_scalar<int64_t>(r, what, v.i));
      break;
    case GgufValue::Type::kF32:
      R1_RETURN_IF_ERROR(read_scalar<float>(r, what, v.f));
      break;
    case GgufValue::Type::kF64:
      R1_RETURN_IF_ERROR(read_scalar<double>(r, what, v.f));
      break;
    case GgufValue::Type::kBool: {
      R1_ASSIGN_OR_RETURN(uint8_t x, r.read<uint8_t>(what));
      if (x > 1) {
        return invalid_argument(std::string(label) + ": " + what + ": a bool of value " +
                                std::to_string(x) + " (must be 0 or 1)");
      }
      v.u = x;
      break;
    }
    case GgufValue::Type::kString: {
      R1_ASSIGN_OR_RETURN(v.s, r.read_string(what));
      break;
    }
    case GgufValue::Type::kArray: {
      if (depth >= kMaxArrayDepth) {
        return invalid_argument(std::string(label) + ": " + what + ": arrays nested more than " +
                                std::to_string(kMaxArrayDepth) + " deep");
      }
      R1_ASSIGN_OR_RETURN(uint32_t item, r.read<uint32_t>(what));
      if (!known_value_type(item)) {
        return invalid_argument(std::string(label) + ": " + what + ": unknown array item type " +
                                std::to_string(item));
      }
      v.item_type = static_cast<GgufValue::Type>(item);
      R1_ASSIGN_OR_RETURN(uint64_t n, r.read<uint64_t>(what));
      // Every item takes at least min_value_bytes: a count the rest of the
      // file cannot hold is rejected before anything is allocated.
      if (n > r.left() / min_value_bytes(v.item_type)) {
        return data_loss(std::string(label) + ": " + what + ": an array of " + std::to_string(n) +
                         " " + std::string(gguf_value_type_name(v.item_type)) +
                         " items cannot fit in the rest of the file (truncated or corrupt)");
      }
      if (n > items_left) {
        return out_of_range(std::string(label) + ": " + what +
                            ": the metadata arrays hold more than " +
                            std::to_string(kMaxArrayItems) + " items in all");
      }
      items_left -= n;
      v.items.reserve(static_cast<size_t>(n));
      for (uint64_t k = 0; k < n; ++k) {
        R1_ASSIGN_OR_RETURN(GgufValue x,
                            read_value(r, v.item_type, what, label, depth + 1, items_left));
        v.items.push_back(std::move(x));
      }
      break;
    }
  }
  return v;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

}  // namespace

std::optional<GgmlBlock> ggml_block(uint32_t type) {
  const TypeRow* r = type_row(type);
  if (r == nullptr) return std::nullopt;
  return GgmlBlock{r->elements, r->bytes, r->readable};
}

Status require_readable(std::string_view label, const GgufTensor& t) {
  const std::optional<GgmlBlock> block = ggml_block(t.type);
  if (block && block->readable) return ok_status();
  std::string readable;
  for (const TypeRow& r : kTypes) {
    if (r.readable) readable += (readable.empty() ? "" : ", ") + std::string(r.name);
  }
  return unimplemented(std::string(label) + ": tensor " + t.name + " is stored as " +
                       ggml_type_name(t.type) + ", which r1serve cannot read (it reads " +
                       readable + ")");
}

std::string ggml_type_name(uint32_t type) {
  const TypeRow* r = type_row(type);
  if (r == nullptr) return "type " + std::to_string(type);
  return std::string(r->name);
}

std::string_view gguf_value_type_name(GgufValue::Type t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const auto i = static_cast<size_t>(t);
  return i < std::size(kNames) ? kNames[i] : std::string_view("unknown");
}

bool GgufValue::is_integer() const {
  switch (type) {
    case Type::kU8:
    case Type::kI8:
    case Type::kU16:
    case Type::kI16:
    case Type::kU32:
    case Type::kI32:
    case Type::kU64:
    case Type::kI64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::is_float() const {
  return type == Type::kF32 || type == Type::kF64;
}

std::optional<int64_t> GgufValue::as_int() const {
  switch (type) {
    case Type::kU8:
    case Type::kU16:
    case Type::kU32:
    case Type::kU64:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    case Type::kI8:
    case Type::kI16:
    case Type::kI32:
    case Type::kI64:
      return i;
    default:
      return std::nullopt;
  }
}

std::optional<double> GgufValue::as_double() const {
  if (is_float()) return f;
  if (auto v = as_int()) return static_cast<double>(*v);
  if (is_integer()) return static_cast<double>(u);
  return std::nullopt;
}

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

Result<GgufHeader> parse_gguf(const uint8_t* data, size_t size, std::string_view label) {
  const std::string lbl(label);
  Reader r(data, size, label);
  GgufHeader h;
  R1_ASSIGN_OR_RETURN(uint32_t magic, r.read<uint32_t>("the magic number"));
  if (magic != kMagic) {
    return invalid_argument(lbl + ": not a GGUF file (the first four bytes are not \"GGUF\")");
  }
  R1_ASSIGN_OR_RETURN(h.version, r.read<uint32_t>("the version"));
  if (h.version == 1) {
    return unimplemented(lbl +
                         ": GGUF version 1 is not supported (only 2 and 3); convert the "
                         "file again with a current llama.cpp");
  }
  if (h.version != 2 && h.version != 3) {
    // A big-endian writer stores 3 as 0x03000000.
    if (h.version == 0x02000000u || h.version == 0x03000000u) {
      return unimplemented(lbl + ": a big-endian GGUF file; only little-endian files are read");
    }
    return invalid_argument(lbl + ": unknown GGUF version " + std::to_string(h.version) +
                            " (2 and 3 are read)");
  }
  R1_ASSIGN_OR_RETURN(uint64_t n_tensors, r.read<uint64_t>("the tensor count"));
  R1_ASSIGN_OR_RETURN(uint64_t n_kv, r.read<uint64_t>("the metadata count"));
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a
  // tensor info at least 8 + 4 + 4 + 8.
  if (n_kv > r.left() / 13) {
    return data_loss(lbl + ": the header declares " + std::to_string(n_kv) +
                     " metadata entries, more than the file can hold (truncated or corrupt)");
  }
  if (n_tensors > r.left() / 24) {
    return data_loss(lbl + ": the header declares " + std::to_string(n_tensors) +
                     " tensors, more than the file can hold (truncated or corrupt)");
  }

  uint64_t items_left = kMaxArrayItems;
  for (uint64_t k = 0; k < n_kv; ++k) {
    R1_ASSIGN_OR_RETURN(std::string key, r.read_string("a metadata key"));
    const std::string what = "metadata " + key;
    R1_ASSIGN_OR_RETURN(uint32_t type, r.read<uint32_t>(what));
    if (!known_value_type(type)) {
      return invalid_argument(lbl + ": " + what + ": unknown value type " + std::to_string(type));
    }
    R1_ASSIGN_OR_RETURN(GgufValue value, read_value(r, static_cast<GgufValue::Type>(type), what,
                                                    label, 0, items_left));
    if (!h.metadata.emplace(key, std::move(value)).second) {
      return invalid_argument(lbl + ": metadata key " + key + " appears twice");
    }
  }
  if (auto it = h.metadata.find("general.alignment"); it != h.metadata.end()) {
    const std::optional<int64_t> a = it->second.as_int();
    if (!a || *a <= 0 || (*a & (*a - 1)) != 0 || *a > (1 << 20)) {
      return invalid_argument(lbl + ": general.alignment must be a power of two up to 2^20");
    }
    h.alignment = static_cast<uint64_t>(*a);
  }

  h.tensors.reserve(static_cast<size_t>(n_tensors));
  std::map<std::string_view, size_t> seen;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    R1_ASSIGN_OR_RETURN(t.name, r.read_string("a tensor name"));
    const std::string what = "tensor " + t.name;
    R1_ASSIGN_OR_RETURN(uint32_t n_dims, r.read<uint32_t>(what));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return invalid_argument(lbl + ": " + what + ": " + std::to_string(n_dims) +
                              " dimensions (1 to 4 allowed)");
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      R1_ASSIGN_OR_RETURN(uint64_t dim, r.read<uint64_t>(what));
      if (dim == 0 || dim > (uint64_t{1} << 40) || n_elements > (uint64_t{1} << 42) / dim) {
        return invalid_argument(lbl + ": " + what + ": dimension " + std::to_string(d) + " of " +
                                std::to_string(dim) + " is zero or too large");
      }
      n_elements *= dim;
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    R1_ASSIGN_OR_RETURN(t.type, r.read<uint32_t>(what));
    R1_ASSIGN_OR_RETURN(t.offset, r.read<uint64_t>(what));
    const std::optional<GgmlBlock> block = ggml_block(t.type);
    if (!block) {
      return unimplemented(lbl + ": " + what + ": tensor type " + ggml_type_name(t.type) +
                           " is not one ggml defines");
    }
    if (t.dims[0] % block->elements != 0) {
      return invalid_argument(lbl + ": " + what + ": rows of " + std::to_string(t.dims[0]) +
                              " elements are not a whole number of " + ggml_type_name(t.type) +
                              " blocks of " + std::to_string(block->elements));
    }
    t.n_bytes = static_cast<size_t>(n_elements / static_cast<uint64_t>(block->elements) *
                                    static_cast<uint64_t>(block->bytes));
    if (t.offset % h.alignment != 0) {
      return invalid_argument(lbl + ": " + what + ": data offset " + std::to_string(t.offset) +
                              " is not a multiple of the alignment " + std::to_string(h.alignment));
    }
    h.tensors.push_back(std::move(t));
  }
  for (size_t k = 0; k < h.tensors.size(); ++k) {
    if (!seen.emplace(h.tensors[k].name, k).second) {
      return invalid_argument(lbl + ": tensor " + h.tensors[k].name + " appears twice");
    }
  }

  const uint64_t pad = (h.alignment - r.pos() % h.alignment) % h.alignment;
  h.data_offset = r.pos() + static_cast<size_t>(pad);
  if (h.tensors.empty()) {
    h.data_offset = std::min(h.data_offset, size);
    return h;
  }
  if (h.data_offset > size) return r.truncated("the padding before the tensor data");
  const uint64_t data_size = size - h.data_offset;
  std::vector<const GgufTensor*> by_offset;
  for (GgufTensor& t : h.tensors) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return data_loss(lbl + ": tensor " + t.name + " " + dims_string(t.dims) + " " +
                       ggml_type_name(t.type) + ": its " + std::to_string(t.n_bytes) +
                       " bytes at data offset " + std::to_string(t.offset) +
                       " run past the end of the file (truncated?)");
    }
    t.data = data + h.data_offset + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensor& a = *by_offset[k - 1];
    const GgufTensor& b = *by_offset[k];
    if (a.offset + a.n_bytes > b.offset) {
      return invalid_argument(lbl + ": tensors " + a.name + " and " + b.name + " overlap");
    }
  }
  return h;
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto f = std::make_unique<GgufFile>();
  R1_ASSIGN_OR_RETURN(f->file_, MappedFile::open(path));
  R1_ASSIGN_OR_RETURN(f->header_, parse_gguf(f->file_.data(), f->file_.size(), path));
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = header_.metadata.find(key);
  return it == header_.metadata.end() ? nullptr : &it->second;
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(path() + ": metadata " + std::string(key) + " is missing");
  if (auto i = v->as_int()) return *i;
  return invalid_argument(path() + ": metadata " + std::string(key) + " is a " +
                          std::string(gguf_value_type_name(v->type)) + ", not an integer");
}

Result<double> GgufFile::get_double(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(path() + ": metadata " + std::string(key) + " is missing");
  if (auto d = v->as_double()) return *d;
  return invalid_argument(path() + ": metadata " + std::string(key) + " is a " +
                          std::string(gguf_value_type_name(v->type)) + ", not a number");
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return not_found(path() + ": metadata " + std::string(key) + " is missing");
  if (v->type == GgufValue::Type::kString) return v->s;
  return invalid_argument(path() + ": metadata " + std::string(key) + " is a " +
                          std::string(gguf_value_type_name(v->type)) + ", not a string");
}

bool is_gguf_path(std::string_view path) {
  if (path.size() < 5) return false;
  std::string ext(path.substr(path.size() - 5));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".gguf";
}

Result<std::shared_ptr<GgufModel>> GgufModel::open(const std::string& first) {
  auto model = std::make_shared<GgufModel>();
  R1_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> head, GgufFile::open(first));

  // llama.cpp's split naming: PREFIX-00001-of-00003.gguf.
  static const std::regex kSplitName(R"(^(.*)-(\d{5})-of-(\d{5})(\.gguf)$)",
                                     std::regex::icase | std::regex::optimize);
  std::smatch m;
  int64_t count = 1;
  std::string prefix, extension;
  if (std::regex_match(first, m, kSplitName)) {
    prefix = m[1].str();
    extension = m[4].str();  // the siblings' names keep the first one's case
    const int64_t no = std::stoll(m[2].str());
    count = std::stoll(m[3].str());
    if (no != 1) {
      return invalid_argument(first + ": is split " + std::to_string(no) + " of " +
                              std::to_string(count) + "; give the first, " + prefix + "-00001-of-" +
                              m[3].str() + ".gguf");
    }
    if (count < 1) return invalid_argument(first + ": a split set of 0 files");
  }
  if (const GgufValue* c = head->find("split.count")) {
    const std::optional<int64_t> declared = c->as_int();
    if (!declared || *declared != count) {
      return invalid_argument(first + ": split.count is " +
                              (declared ? std::to_string(*declared) : std::string("not a number")) +
                              " but the file name says " + std::to_string(count));
    }
  } else if (count != 1) {
    return invalid_argument(first + ": the name says split 1 of " + std::to_string(count) +
                            " but the file has no split.count");
  }
  if (const GgufValue* no = head->find("split.no"); no != nullptr && no->as_int() != 0) {
    return invalid_argument(first + ": split.no is " + std::to_string(no->as_int().value_or(-1)) +
                            ", not 0: this is not the first file of its set");
  }
  model->files_.push_back(std::move(head));
  for (int64_t k = 2; k <= count; ++k) {
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "-%05lld-of-%05lld", static_cast<long long>(k),
                  static_cast<long long>(count));
    const std::string path = prefix + suffix + extension;
    auto f = GgufFile::open(path);
    if (!f.ok()) {
      return f.status().with_context(first + ": split " + std::to_string(k) + " of " +
                                     std::to_string(count));
    }
    std::unique_ptr<GgufFile> file = std::move(f).value();
    const GgufValue* no = file->find("split.no");
    if (no == nullptr || no->as_int() != k - 1) {
      return invalid_argument(path + ": split.no should be " + std::to_string(k - 1) +
                              " (zero-based) for this file name");
    }
    model->files_.push_back(std::move(file));
  }
  for (const auto& f : model->files_) {
    for (const GgufTensor& t : f->header().tensors) {
      auto [it, inserted] = model->tensors_.emplace(t.name, &t);
      if (!inserted) {
        return invalid_argument("tensor " + t.name + ": appears in two splits of " + first);
      }
    }
  }
  if (const GgufValue* n = model->first().find("split.tensors.count")) {
    if (n->as_int() != static_cast<int64_t>(model->tensors_.size())) {
      return invalid_argument(first + ": split.tensors.count says " +
                              std::to_string(n->as_int().value_or(-1)) + " tensors, the " +
                              std::to_string(count) + " files hold " +
                              std::to_string(model->tensors_.size()));
    }
  }
  return model;
}

const GgufTensor* GgufModel::find_tensor(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

uint64_t GgufModel::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) {
    for (const GgufTensor& t : f->header().tensors) n += t.n_bytes;
  }
  return n;
}

}  // namespace r1
