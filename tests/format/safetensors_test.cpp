// parse_safetensors and SafetensorsFile on hand-built bytes: one test per way a
// file can be wrong, each checking the code and the key phrase of the message.
#include "format/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "format_test_util.h"

namespace r1 {
namespace {

using test::raw_file;
using test::raw_safetensors;
using test::RawTensor;
using ::testing::HasSubstr;

// Parses from an exact-size heap copy, so a read past the end is caught by
// ASan. The tensors' data pointers stay valid until the next call.
Result<std::vector<TensorInfo>> parse(const std::string& bytes, std::string_view label = "t.st") {
  static std::vector<uint8_t> copy;
  copy.assign(bytes.begin(), bytes.end());
  copy.shrink_to_fit();
  return parse_safetensors(copy.empty() ? nullptr : copy.data(), copy.size(), label);
}

// A one-tensor header {"w": <entry>} over `buffer`.
std::string with_entry(const std::string& entry, std::string_view buffer = std::string(64, 'x')) {
  return raw_safetensors("{\"w\":" + entry + "}", buffer);
}

void expect_error(const Result<std::vector<TensorInfo>>& r, StatusCode code,
                  const std::string& phrase) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << phrase;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr(phrase));
}

TEST(SafetensorsParseTest, ParsesTensorsSortedByOffset) {
  // Header lists "b" first but "a" comes first in the buffer.
  std::string buffer(24 + 8, '\0');
  for (int i = 0; i < 24; ++i) buffer[i] = static_cast<char>(i);
  for (int i = 24; i < 32; ++i) buffer[i] = static_cast<char>(100 + i);
  std::string header = R"({"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},)"
                       R"("__metadata__":{"format":"pt"},)"
                       R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  std::string bytes = raw_safetensors(header, buffer);
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  auto r = parse_safetensors(copy.data(), copy.size(), "x.safetensors");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  const TensorInfo& a = (*r)[0];
  const TensorInfo& b = (*r)[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.n_elements(), 6);
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(a.n_bytes, 24u);
  EXPECT_EQ(a.file, "x.safetensors");
  const uint8_t* buffer_start = copy.data() + 8 + header.size();
  EXPECT_EQ(a.data, buffer_start);
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.dtype, DType::kBF16);
  EXPECT_EQ(b.offset, 24u);
  EXPECT_EQ(b.n_bytes, 8u);
  EXPECT_EQ(b.data, buffer_start + 24);
  EXPECT_EQ(b.data[0], 124);
}

TEST(SafetensorsParseTest, AcceptsEveryRepresentableDtype) {
  auto r = parse(raw_file({{"f16", "F16", {3}},
                           {"i8", "I8", {5}},
                           {"u8", "U8", {2, 2}},
                           {"i32", "I32", {3}},
                           {"i64", "I64", {1}}}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].dtype, DType::kF16);
  EXPECT_EQ((*r)[1].dtype, DType::kI8);
  EXPECT_EQ((*r)[2].dtype, DType::kU8);
  EXPECT_EQ((*r)[3].dtype, DType::kI32);
  EXPECT_EQ((*r)[4].dtype, DType::kI64);
  EXPECT_EQ((*r)[4].n_bytes, 8u);
}

TEST(SafetensorsParseTest, ScalarAndEmptyTensors) {
  std::string header = R"({"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                       R"("empty":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                       R"("empty2":{"dtype":"BF16","shape":[5,0],"data_offsets":[4,4]}})";
  auto r = parse(raw_safetensors(header, "abcd"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].name, "scalar");
  EXPECT_EQ((*r)[0].n_elements(), 1);
  EXPECT_EQ((*r)[0].shape, std::vector<int64_t>{});
  EXPECT_EQ((*r)[1].name, "empty");  // equal ranges: by name
  EXPECT_EQ((*r)[1].n_elements(), 0);
  EXPECT_EQ((*r)[2].name, "empty2");
  EXPECT_EQ((*r)[2].n_bytes, 0u);
}

TEST(SafetensorsParseTest, HeaderOnlyFileHasNoTensors) {
  auto r = parse(raw_safetensors(R"({"__metadata__":{"format":"pt"}})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->empty());
}

TEST(SafetensorsParseTest, HeaderMayBePaddedWithSpaces) {
  auto r =
      parse(raw_safetensors(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}      )", "z"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)[0].data[0], 'z');
}

TEST(SafetensorsParseTest, GapsAndTrailingBytesAreAccepted) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  auto r = parse(raw_safetensors(header, std::string(20, 'q')));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->size(), 2u);
}

TEST(SafetensorsParseTest, MissingFile) {
  test::TempDir dir;
  auto r = SafetensorsFile::open(dir.file("nope.safetensors"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nope.safetensors"));
}

TEST(SafetensorsParseTest, OpenReadsAFile) {
  test::TempDir dir;
  test::write_file(dir.file("m.safetensors"), raw_file({{"w", "BF16", {2, 2}}}));
  auto r = SafetensorsFile::open(dir.file("m.safetensors"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ((*r)->tensors().size(), 1u);
  const TensorInfo& w = (*r)->tensors()[0];
  EXPECT_EQ(w.file, dir.file("m.safetensors"));
  EXPECT_EQ((*r)->path(), dir.file("m.safetensors"));
  EXPECT_EQ(w.n_bytes, 8u);
  for (size_t i = 0; i < w.n_bytes; ++i) EXPECT_EQ(w.data[i], 1);
}

TEST(SafetensorsParseTest, OpenNamesTheFileInParseErrors) {
  test::TempDir dir;
  test::write_file(dir.file("bad.safetensors"), "abc");
  auto r = SafetensorsFile::open(dir.file("bad.safetensors"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(dir.file("bad.safetensors") + ": truncated"));
}

TEST(SafetensorsParseTest, TruncatedBeforeHeaderLength) {
  expect_error(parse("\x05\x00\x00", "short.st"), StatusCode::kDataLoss, "short.st: truncated");
  expect_error(parse(""), StatusCode::kDataLoss, "t.st: truncated: 0 bytes");
}

TEST(SafetensorsParseTest, HeaderLengthPastEndOfFile) {
  std::string bytes = test::le64(100) + "{}";
  expect_error(parse(bytes), StatusCode::kDataLoss,
               "t.st: header length 100 runs past the end of the file (10 bytes)");
}

TEST(SafetensorsParseTest, HeaderOver100MB) {
  expect_error(parse(test::le64(100'000'001) + "{}"), StatusCode::kOutOfRange,
               "header length 100000001 bytes is over the limit");
  // The largest u64 must not wrap around in 8 + N.
  expect_error(parse(test::le64(~0ull) + "{}"), StatusCode::kOutOfRange, "over the limit");
}

TEST(SafetensorsParseTest, HeaderOfExactly100MBIsNotOverTheLimit) {
  // Allowed by size, so the complaint is that the file is too short for it.
  expect_error(parse(test::le64(100'000'000) + "{}"), StatusCode::kDataLoss,
               "runs past the end of the file");
}

TEST(SafetensorsParseTest, HeaderNotJson) {
  expect_error(parse(raw_safetensors("{\"w\": ")), StatusCode::kInvalidArgument,
               "t.st: header: not valid JSON");
  expect_error(parse(raw_safetensors("")), StatusCode::kInvalidArgument, "not valid JSON");
  // A NUL must not end the header early and hide what follows.
  expect_error(parse(raw_safetensors(std::string("{}\0{\"w\":1}", 10))),
               StatusCode::kInvalidArgument, "not valid JSON: NUL byte at offset 2");
}

TEST(SafetensorsParseTest, HeaderWithInvalidUtf8) {
  expect_error(parse(raw_safetensors("{\"w\xff\":1}")), StatusCode::kInvalidArgument,
               "not valid JSON");
}

TEST(SafetensorsParseTest, HeaderNotAnObject) {
  expect_error(parse(raw_safetensors("[1,2]")), StatusCode::kInvalidArgument,
               "t.st: header is a JSON array, not an object");
  expect_error(parse(raw_safetensors("7")), StatusCode::kInvalidArgument, "not an object");
}

TEST(SafetensorsParseTest, DuplicateTensorName) {
  std::string e = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  expect_error(parse(raw_safetensors("{\"w\":" + e + ",\"w\":" + e + "}", "a")),
               StatusCode::kInvalidArgument, "key \"w\" appears twice");
}

TEST(SafetensorsParseTest, MetadataMustBeAnObject) {
  expect_error(parse(raw_safetensors(R"({"__metadata__":"pt"})")), StatusCode::kInvalidArgument,
               "\"__metadata__\" is a string, not an object");
}

TEST(SafetensorsParseTest, EntryNotAnObject) {
  expect_error(parse(with_entry("[1,2]")), StatusCode::kInvalidArgument,
               "t.st: tensor w: entry is a array, not an object");
  expect_error(parse(with_entry("3")), StatusCode::kInvalidArgument, "tensor w: entry is a number");
}

TEST(SafetensorsParseTest, MissingDtype) {
  expect_error(parse(with_entry(R"({"shape":[1],"data_offsets":[0,4]})")),
               StatusCode::kInvalidArgument, "tensor w: missing \"dtype\"");
}

TEST(SafetensorsParseTest, MissingShape) {
  expect_error(parse(with_entry(R"({"dtype":"F32","data_offsets":[0,4]})")),
               StatusCode::kInvalidArgument, "tensor w: missing \"shape\"");
}

TEST(SafetensorsParseTest, MissingDataOffsets) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[1]})")), StatusCode::kInvalidArgument,
               "tensor w: missing \"data_offsets\"");
}

TEST(SafetensorsParseTest, DtypeNotAString) {
  expect_error(parse(with_entry(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})")),
               StatusCode::kInvalidArgument, "tensor w: \"dtype\" is not a string");
}

TEST(SafetensorsParseTest, UnknownDtypeIsNamed) {
  expect_error(parse(with_entry(R"({"dtype":"XYZ","shape":[1],"data_offsets":[0,4]})")),
               StatusCode::kInvalidArgument, "tensor w: unknown dtype \"XYZ\"");
  // dtype names are case-sensitive in the format.
  expect_error(parse(with_entry(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})")),
               StatusCode::kInvalidArgument, "unknown dtype \"f32\"");
}

TEST(SafetensorsParseTest, UnsupportedDtypeIsNamed) {
  for (const char* dtype : {"F8_E4M3", "F8_E5M2", "F64", "BOOL", "U16"}) {
    expect_error(parse(with_entry(std::string(R"({"dtype":")") + dtype +
                                  R"(","shape":[1],"data_offsets":[0,1]})")),
                 StatusCode::kUnimplemented,
                 std::string("tensor w: dtype ") + dtype + " is not supported");
  }
}

TEST(SafetensorsParseTest, ShapeNotAnArray) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})")),
               StatusCode::kInvalidArgument, "tensor w: \"shape\" is not an array");
}

TEST(SafetensorsParseTest, NegativeShape) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]})")),
               StatusCode::kInvalidArgument, "tensor w: shape dimension -1 is negative");
}

TEST(SafetensorsParseTest, NonIntegerShape) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})")),
               StatusCode::kInvalidArgument, "tensor w: shape dimension is not an integer (2.5)");
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})")),
               StatusCode::kInvalidArgument, "shape dimension is not an integer");
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})")),
               StatusCode::kInvalidArgument, "shape dimension is not an integer (\"2\")");
}

TEST(SafetensorsParseTest, ShapeTooLargeForInt64) {
  expect_error(
      parse(with_entry(R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]})")),
      StatusCode::kInvalidArgument, "shape dimension 18446744073709551615 is too large");
}

TEST(SafetensorsParseTest, ShapeProductOverflowIsCaught) {
  // 2^32 * 2^32 = 2^64 wraps to 0 in unchecked arithmetic and would match [0, 0).
  expect_error(
      parse(with_entry(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})")),
      StatusCode::kInvalidArgument, "has more elements than fit in 64 bits");
  // The product fits u64 only up to the last dim, which makes it 0; dims are
  // multiplied as int64 elsewhere, so this is refused too.
  expect_error(
      parse(with_entry(R"({"dtype":"U8","shape":[4611686018427387904,3,0],"data_offsets":[0,0]})")),
      StatusCode::kInvalidArgument, "has more elements than fit in 64 bits");
  // 2^62 elements of 4 bytes: the byte count wraps to 0.
  expect_error(
      parse(with_entry(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})")),
      StatusCode::kInvalidArgument, "needs more bytes than fit in 64 bits");
}

TEST(SafetensorsParseTest, DataOffsetsNotAPair) {
  for (const char* offsets : {"[0]", "[0,4,8]", "4", "{}"}) {
    expect_error(parse(with_entry(std::string(R"({"dtype":"F32","shape":[1],"data_offsets":)") +
                                  offsets + "}")),
                 StatusCode::kInvalidArgument,
                 "tensor w: \"data_offsets\" is not a [begin, end] pair");
  }
}

TEST(SafetensorsParseTest, DataOffsetsNegativeOrNotIntegers) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})")),
               StatusCode::kInvalidArgument, "data_offsets begin -4 is negative");
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})")),
               StatusCode::kInvalidArgument, "data_offsets end is not an integer");
}

TEST(SafetensorsParseTest, DataOffsetsBeginAfterEnd) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})")),
               StatusCode::kInvalidArgument, "tensor w: data_offsets begin 8 is past end 4");
}

TEST(SafetensorsParseTest, DataOffsetsPastTheByteBuffer) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})", "12345")),
               StatusCode::kDataLoss,
               "tensor w: data_offsets [0, 16) run past the end of the byte buffer (5 bytes");
  // Huge offsets must not wrap when compared.
  expect_error(parse(with_entry(R"({"dtype":"U8","shape":[1],)"
                                R"("data_offsets":[18446744073709551615,18446744073709551615]})")),
               StatusCode::kDataLoss, "run past the end of the byte buffer");
}

TEST(SafetensorsParseTest, ByteCountDisagreesWithShape) {
  expect_error(parse(with_entry(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})")),
               StatusCode::kInvalidArgument,
               "tensor w: data_offsets cover 20 bytes but shape [2, 3] of F32 needs 24");
  expect_error(parse(with_entry(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]})")),
               StatusCode::kInvalidArgument, "shape [2, 3] of BF16 needs 12");
}

TEST(SafetensorsParseTest, OverlappingTensors) {
  std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  expect_error(parse(raw_safetensors(header, std::string(24, 'x'))), StatusCode::kInvalidArgument,
               "t.st: tensors a [0, 16) and b [8, 24) overlap");
}

TEST(SafetensorsParseTest, OverlapWithANonNeighbourIsCaught) {
  // Sorted by start: big [0,32), small [8,12), late [16,20). late does not touch
  // its neighbour small but lies inside big.
  std::string header = R"({"big":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                       R"("small":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                       R"("late":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})";
  auto r = parse(raw_safetensors(header, std::string(32, 'x')));
  expect_error(r, StatusCode::kInvalidArgument, "overlap");
  EXPECT_THAT(r.status().message(), HasSubstr("big [0, 32)"));
}

TEST(SafetensorsParseTest, IdenticalRangesOverlap) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  expect_error(parse(raw_safetensors(header, "abcd")), StatusCode::kInvalidArgument, "overlap");
}

TEST(SafetensorsParseTest, EmptyTensorsDoNotOverlap) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  auto r = parse(raw_safetensors(header, std::string(8, 'x')));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

TEST(SafetensorsParseTest, EveryTruncationFailsCleanly) {
  std::string bytes = raw_file({{"a", "F32", {3}}, {"b", "BF16", {2, 2}}, {"c", "I64", {1}}});
  ASSERT_TRUE(parse(bytes).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = parse(bytes.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes";
  }
}

TEST(SafetensorsParseTest, EverySingleByteCorruptionIsHandled) {
  // No crash and no out-of-bounds read (ASan) whatever byte of the header changes.
  std::string bytes = raw_file({{"a", "F32", {3}}, {"b", "BF16", {2, 2}}});
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t header_end = 8 + (u[0] | u[1] << 8);
  int n_ok = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (unsigned char v : {0x00, 0x22, 0x2c, 0x39, 0x5d, 0x7d, 0xff}) {
      std::string mutated = bytes;
      mutated[i] = static_cast<char>(v);
      auto r = parse(mutated);
      if (r.ok()) {
        ++n_ok;
        for (const TensorInfo& t : *r) {
          EXPECT_LE(t.offset + t.n_bytes, bytes.size() - header_end);
        }
      }
    }
  }
  EXPECT_LT(n_ok, static_cast<int>(header_end));  // most corruptions are rejected
}

TEST(SafetensorsParseTest, FuzzSeedsAreWhatTheirNamesSay) {
  // tests/fuzz/corpus/safetensors: valid_* parse, invalid_* do not.
  const std::string dir = std::string(R1SERVE_SOURCE_DIR) + "/tests/fuzz/corpus/safetensors";
  int n_seeds = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    auto r = parse(test::read_file(e.path().string()), name);
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    } else {
      EXPECT_FALSE(r.ok()) << name;
    }
    ++n_seeds;
  }
  EXPECT_GE(n_seeds, 10);
}

TEST(SafetensorsParseTest, DtypeNamesRoundTrip) {
  for (DType t :
       {DType::kF32, DType::kF16, DType::kBF16, DType::kI8, DType::kU8, DType::kI32, DType::kI64}) {
    auto parsed = parse_safetensors_dtype(safetensors_dtype_name(t));
    ASSERT_TRUE(parsed.has_value()) << safetensors_dtype_name(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(safetensors_dtype_name(DType::kBF16), "BF16");
  EXPECT_FALSE(parse_safetensors_dtype("bf16").has_value());
}

}  // namespace
}  // namespace r1
