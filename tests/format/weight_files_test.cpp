// WeightFiles::open_folder: single-file and sharded folders, and every way an
// index and its shards can disagree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "format/safetensors.h"
#include "format_test_util.h"

namespace r1 {
namespace {

using test::raw_file;
using test::RawTensor;
using ::testing::HasSubstr;

// Shard names as the real checkpoints spell them: six-digit total.
constexpr const char* kShard1 = "model-00001-of-000002.safetensors";
constexpr const char* kShard2 = "model-00002-of-000002.safetensors";

std::string index_json(const std::vector<std::pair<std::string, std::string>>& map) {
  std::string s = R"({"metadata":{"total_size":0},"weight_map":{)";
  for (size_t i = 0; i < map.size(); ++i) {
    if (i > 0) s += ",";
    s += "\"" + map[i].first + "\":\"" + map[i].second + "\"";
  }
  return s + "}}";
}

// Two shards: a, b in the first; c in the second; index lists all three.
void write_sharded(const test::TempDir& dir) {
  test::write_file(dir.file(kShard1), raw_file({{"a", "BF16", {2, 3}}, {"b", "F32", {4}}}));
  test::write_file(dir.file(kShard2), raw_file({{"c", "F16", {5}}}));
  test::write_file(dir.file("model.safetensors.index.json"),
                   index_json({{"a", kShard1}, {"b", kShard1}, {"c", kShard2}}));
}

Status open_error(const test::TempDir& dir) {
  auto r = WeightFiles::open_folder(dir.path());
  return r.ok() ? ok_status() : r.status();
}

TEST(WeightFilesTest, OpensASingleFile) {
  test::TempDir dir;
  test::write_file(dir.file("model.safetensors"),
                   raw_file({{"x", "BF16", {3}}, {"y", "F32", {1}}}));
  auto w = WeightFiles::open_folder(dir.path());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(w->source(), dir.file("model.safetensors"));
  EXPECT_EQ(w->all().size(), 2u);
  const TensorInfo* x = w->find("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(x->data[0], 1);
  EXPECT_EQ(w->find("z"), nullptr);
  EXPECT_EQ(w->file_paths(), std::vector<std::string>{dir.file("model.safetensors")});
}

TEST(WeightFilesTest, OpensShardsNamedByTheIndex) {
  test::TempDir dir;
  write_sharded(dir);
  auto w = WeightFiles::open_folder(dir.path());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(w->source(), dir.file("model.safetensors.index.json"));
  EXPECT_EQ(w->all().size(), 3u);
  ASSERT_NE(w->find("a"), nullptr);
  EXPECT_EQ(w->find("a")->file, dir.file(kShard1));
  EXPECT_EQ(w->find("a")->dtype, DType::kBF16);
  ASSERT_NE(w->find("c"), nullptr);
  EXPECT_EQ(w->find("c")->file, dir.file(kShard2));
  EXPECT_EQ(w->find("c")->data[0], 1);
  EXPECT_EQ(w->file_paths().size(), 2u);
}

TEST(WeightFilesTest, DataStaysValidAfterTheObjectMoves) {
  test::TempDir dir;
  write_sharded(dir);
  auto opened = WeightFiles::open_folder(dir.path());
  ASSERT_TRUE(opened.ok());
  WeightFiles moved = std::move(opened).value();
  const TensorInfo* b = moved.find("b");
  ASSERT_NE(b, nullptr);
  for (size_t i = 0; i < b->n_bytes; ++i) EXPECT_EQ(b->data[i], 2);
}

TEST(WeightFilesTest, ShardTensorsBeyondTheIndexAreKept) {
  test::TempDir dir;
  test::write_file(dir.file(kShard1), raw_file({{"a", "F32", {1}}, {"extra", "F32", {1}}}));
  test::write_file(dir.file("model.safetensors.index.json"), index_json({{"a", kShard1}}));
  auto w = WeightFiles::open_folder(dir.path());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_NE(w->find("extra"), nullptr);
}

TEST(WeightFilesTest, MissingShard) {
  test::TempDir dir;
  write_sharded(dir);
  std::filesystem::remove(dir.file(kShard2));
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr(std::string("shard ") + kShard2 + " (holding c)"));
  EXPECT_THAT(st.message(), HasSubstr("no such file"));
}

TEST(WeightFilesTest, TensorListedInIndexButAbsentFromItsShard) {
  test::TempDir dir;
  write_sharded(dir);
  test::write_file(dir.file(kShard2), raw_file({{"d", "F16", {5}}}));
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("tensor c: model.safetensors.index.json places it in " +
                                      std::string(kShard2) + ", but"));
  EXPECT_THAT(st.message(), HasSubstr("does not hold it"));
}

TEST(WeightFilesTest, TensorListedForTheWrongShard) {
  test::TempDir dir;
  write_sharded(dir);
  test::write_file(dir.file("model.safetensors.index.json"),
                   index_json({{"a", kShard2}, {"b", kShard1}, {"c", kShard2}}));
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("tensor a: model.safetensors.index.json places it in " +
                                      std::string(kShard2)));
}

TEST(WeightFilesTest, TensorInTwoShards) {
  test::TempDir dir;
  write_sharded(dir);
  test::write_file(dir.file(kShard2), raw_file({{"c", "F16", {5}}, {"a", "F32", {1}}}));
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tensor a: appears in both"));
  EXPECT_THAT(st.message(), HasSubstr(kShard1));
  EXPECT_THAT(st.message(), HasSubstr(kShard2));
}

TEST(WeightFilesTest, TensorTwiceInTheIndex) {
  test::TempDir dir;
  write_sharded(dir);
  test::write_file(dir.file("model.safetensors.index.json"),
                   index_json({{"a", kShard1}, {"b", kShard1}, {"c", kShard2}, {"a", kShard2}}));
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("key \"a\" appears twice"));
}

TEST(WeightFilesTest, ShardNameOutsideTheFolderIsRejected) {
  test::TempDir dir;
  write_sharded(dir);
  for (const char* bad : {"../model.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ""}) {
    test::write_file(dir.file("model.safetensors.index.json"), index_json({{"a", bad}}));
    Status st = open_error(dir);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr("is not a file name inside the folder")) << bad;
  }
}

TEST(WeightFilesTest, MalformedIndex) {
  test::TempDir dir;
  write_sharded(dir);
  const std::string index = dir.file("model.safetensors.index.json");
  struct Case {
    const char* text;
    const char* phrase;
  } cases[] = {
      {"{\"weight_map\": ", "not valid JSON"},
      {"[]", "is a JSON array, not an object"},
      {R"({"metadata":{}})", "missing \"weight_map\""},
      {R"({"weight_map":[]})", "\"weight_map\" is not an object"},
      {R"({"weight_map":{}})", "\"weight_map\" lists no tensors"},
      {R"({"weight_map":{"a":1}})", "tensor a: shard is a number, not a file name"},
  };
  for (const Case& c : cases) {
    test::write_file(index, c.text);
    Status st = open_error(dir);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(st.message(), HasSubstr(c.phrase)) << c.text;
    EXPECT_THAT(st.message(), HasSubstr("model.safetensors.index.json")) << c.text;
  }
}

TEST(WeightFilesTest, CorruptShardNamesTheShard) {
  test::TempDir dir;
  write_sharded(dir);
  test::write_file(dir.file(kShard1), "bad");
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr(dir.file(kShard1) + ": truncated"));
}

TEST(WeightFilesTest, FolderWithoutWeights) {
  test::TempDir dir;
  test::write_file(dir.file("config.json"), "{}");
  Status st = open_error(dir);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr(dir.path() + ": neither model.safetensors nor "
                                                   "model.safetensors.index.json"));
}

TEST(WeightFilesTest, MissingFolder) {
  test::TempDir dir;
  auto r = WeightFiles::open_folder(dir.file("absent"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr(dir.file("absent") + ": no such model folder"));
}

}  // namespace
}  // namespace r1
