// write_safetensors: output layout checked byte by byte, then read back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "format_test_util.h"

namespace r1 {
namespace {

using ::testing::HasSubstr;

TensorToWrite make_tensor(std::string name, DType dtype, std::vector<int64_t> shape, uint8_t seed) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), {}};
  size_t n = dtype_size(dtype);
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  for (size_t i = 0; i < n; ++i) t.bytes.push_back(static_cast<uint8_t>(seed + i * 7));
  return t;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return n;
}

size_t count_files(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(SafetensorsWriterTest, RoundTripsInGivenOrder) {
  test::TempDir dir;
  std::vector<TensorToWrite> tensors = {
      make_tensor("z.first", DType::kBF16, {3, 5}, 1), make_tensor("a.second", DType::kF32, {7}, 2),
      make_tensor("m.scalar", DType::kI64, {}, 3),     make_tensor("empty", DType::kF16, {0, 4}, 4),
      make_tensor("bytes", DType::kU8, {3}, 5),
  };
  const std::string path = dir.file("out.safetensors");
  Status st = write_safetensors(path, tensors);
  ASSERT_TRUE(st.ok()) << st.to_string();

  std::string bytes = test::read_file(path);
  const uint64_t n = header_length(bytes);
  EXPECT_EQ((8 + n) % 8, 0u) << "byte buffer must start 8-byte aligned";
  ASSERT_LE(8 + n, bytes.size());
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"], nlohmann::json({{"format", "pt"}}));
  EXPECT_EQ(header["z.first"]["dtype"], "BF16");
  EXPECT_EQ(header["z.first"]["data_offsets"], nlohmann::json({0, 30}));
  EXPECT_EQ(header["a.second"]["data_offsets"], nlohmann::json({30, 58}));
  EXPECT_EQ(header["m.scalar"]["shape"], nlohmann::json::array());
  // Data in the given order, no gaps, nothing after the last tensor.
  std::string expected_data;
  for (const auto& t : tensors) expected_data.append(t.bytes.begin(), t.bytes.end());
  EXPECT_EQ(bytes.substr(8 + n), expected_data);

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const auto& read = (*file)->tensors();
  ASSERT_EQ(read.size(), tensors.size());
  for (const TensorToWrite& w : tensors) {
    auto it = std::find_if(read.begin(), read.end(),
                           [&](const TensorInfo& t) { return t.name == w.name; });
    ASSERT_NE(it, read.end()) << w.name;
    EXPECT_EQ(it->dtype, w.dtype) << w.name;
    EXPECT_EQ(it->shape, w.shape) << w.name;
    ASSERT_EQ(it->n_bytes, w.bytes.size()) << w.name;
    if (!w.bytes.empty()) {
      EXPECT_EQ(std::memcmp(it->data, w.bytes.data(), w.bytes.size()), 0) << w.name;
    }
  }
}

TEST(SafetensorsWriterTest, PadsEveryHeaderLengthToEightBytes) {
  test::TempDir dir;
  for (size_t name_len = 1; name_len <= 17; ++name_len) {
    const std::string path = dir.file("p.safetensors");
    ASSERT_TRUE(
        write_safetensors(path, {make_tensor(std::string(name_len, 'n'), DType::kF32, {2}, 0)})
            .ok());
    std::string bytes = test::read_file(path);
    const uint64_t n = header_length(bytes);
    EXPECT_EQ((8 + n) % 8, 0u) << "name length " << name_len;
    EXPECT_EQ(bytes.size(), 8 + n + 8);
    // The padding is spaces, after the closing brace.
    std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
    EXPECT_TRUE(SafetensorsFile::open(path).ok());
  }
}

TEST(SafetensorsWriterTest, ReplacesAnExistingFileAndLeavesNoTemporaries) {
  test::TempDir dir;
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(write_safetensors(path, {make_tensor("a", DType::kF32, {4}, 0)}).ok());
  ASSERT_TRUE(write_safetensors(path, {make_tensor("b", DType::kBF16, {2}, 0)}).ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ((*file)->tensors().size(), 1u);
  EXPECT_EQ((*file)->tensors()[0].name, "b");
  EXPECT_EQ(count_files(dir.path()), 1u);
}

TEST(SafetensorsWriterTest, RejectsByteCountThatDisagreesWithShape) {
  test::TempDir dir;
  TensorToWrite t = make_tensor("w", DType::kF32, {2, 3}, 0);
  t.bytes.pop_back();
  Status st = write_safetensors(dir.file("x.safetensors"), {t});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tensor w: 23 bytes given, shape [2, 3] of F32 needs 6 x 4"));
  EXPECT_EQ(count_files(dir.path()), 0u);
}

TEST(SafetensorsWriterTest, RejectsRepeatedReservedAndNegative) {
  test::TempDir dir;
  const std::string path = dir.file("x.safetensors");
  auto a = make_tensor("a", DType::kF32, {1}, 0);
  EXPECT_THAT(write_safetensors(path, {a, a}).message(), HasSubstr("tensor a: written twice"));
  EXPECT_THAT(write_safetensors(path, {make_tensor("__metadata__", DType::kF32, {1}, 0)}).message(),
              HasSubstr("the name is reserved"));
  TensorToWrite neg{"n", DType::kF32, {-1}, {}};
  EXPECT_THAT(write_safetensors(path, {neg}).message(), HasSubstr("negative dimension -1"));
  EXPECT_EQ(count_files(dir.path()), 0u);
}

TEST(SafetensorsWriterTest, MissingFolderIsAnError) {
  test::TempDir dir;
  Status st = write_safetensors(dir.file("no/such/dir/x.safetensors"),
                                {make_tensor("a", DType::kF32, {1}, 0)});
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("no/such/dir/x.safetensors"));
}

}  // namespace
}  // namespace r1
