// Test helpers for the format module: temporary folders and a byte-level
// safetensors builder that shares no code with write_safetensors, so a writer
// bug cannot hide a reader bug.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace r1::test {

// A fresh folder under testing::TempDir(), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "r1format-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ASSERT_TRUE(out.good()) << path;
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A safetensors image with exactly this header text and byte buffer: the
// length prefix is the header's own size, nothing is padded or checked.
inline std::string raw_safetensors(std::string_view header, std::string_view buffer = "") {
  return le64(header.size()) + std::string(header) + std::string(buffer);
}

// One tensor of a well-formed file built by raw_file().
struct RawTensor {
  std::string name;
  std::string dtype;  // header spelling: "F32", "BF16", "I8", ...
  std::vector<int64_t> shape;
};

inline size_t raw_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  return 1;
}

inline std::string raw_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// A valid file: tensors packed back to back in the given order; tensor i's
// bytes are all (i + 1) so a test can tell which bytes it got.
inline std::string raw_file(const std::vector<RawTensor>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::string buffer;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RawTensor& t = tensors[i];
    size_t n = raw_dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    size_t begin = buffer.size();
    buffer.append(n, static_cast<char>(i + 1));
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + raw_shape(t.shape) +
              ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(buffer.size()) +
              "]}";
  }
  header += "}";
  return raw_safetensors(header, buffer);
}

}  // namespace r1::test
