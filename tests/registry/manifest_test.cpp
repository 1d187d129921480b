// Manifests on scratch folders: SHA-256 against FIPS 180-2's published
// vectors, and every kind of damage caught by the mode that can see it.
#include "registry/manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace r1 {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("r1-manifest-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    model_ = (dir_ / "model").string();
    write_file(dir_ / "model" / "config.json", "{\"hidden_size\": 8}");
    // 3.5 chunks of 1 MiB: a first, two middle and a short last chunk.
    write_file(dir_ / "model" / "model.safetensors", random_bytes((7u << 20) / 2, 3));
    write_file(dir_ / "model" / ".hidden", "not part of the version");
    fs::create_directories(dir_ / "model" / "original");
    write_file(dir_ / "model" / "original" / "consolidated.pth", "not part either");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void flip_byte(const std::string& name, int64_t at) {
    std::fstream f(dir_ / "model" / name, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(at);
    f.write(&c, 1);
  }

  fs::path dir_;
  std::string model_;
};

TEST(Sha256Test, PublishedVectors) {
  const fs::path p = fs::temp_directory_path() / ("r1-sha-" + std::to_string(getpid()));
  // FIPS 180-2, appendix B.1 and B.2.
  write_file(p, "abc");
  EXPECT_EQ(*sha256_file_range(p.string(), 0, 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  write_file(p, "xxabcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopqyy");
  EXPECT_EQ(*sha256_file_range(p.string(), 2, 56),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  write_file(p, "");
  EXPECT_EQ(*sha256_file_range(p.string(), 0, 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  fs::remove(p);
}

TEST_F(ManifestTest, ListsTheFolderFilesWithChunksAndRoundTrips) {
  auto m = write_manifest(model_, int64_t{1} << 20);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->files.size(), 2u);  // no dot file, no subfolder
  EXPECT_EQ(m->files[0].path, "config.json");
  EXPECT_TRUE(m->files[0].chunks.empty());
  EXPECT_EQ(m->files[1].path, "model.safetensors");
  ASSERT_EQ(m->files[1].chunks.size(), 4u);
  EXPECT_EQ(m->files[1].chunks[3],
            *sha256_file_range(model_ + "/model.safetensors", 3 << 20, (1 << 20) / 2));
  EXPECT_EQ(m->files[1].sha256,
            *sha256_file_range(model_ + "/model.safetensors", 0, (7 << 20) / 2));
  auto parsed = parse_manifest(manifest_json(*m), "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(manifest_json(*parsed), manifest_json(*m));
  EXPECT_TRUE(verify_version(model_, VerifyMode::kFull).ok());
  EXPECT_TRUE(verify_version(model_, VerifyMode::kSample).ok());
}

TEST_F(ManifestTest, FullCatchesAFlippedByteAnywhere) {
  ASSERT_TRUE(write_manifest(model_, int64_t{1} << 20).ok());
  flip_byte("model.safetensors", (3 << 20) / 2);  // a middle chunk
  const Status s = verify_version(model_, VerifyMode::kFull);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("model.safetensors: SHA-256 mismatch"), std::string::npos)
      << s.message();
}

TEST_F(ManifestTest, SampleAlwaysChecksTheFirstAndLastChunks) {
  ASSERT_TRUE(write_manifest(model_, int64_t{1} << 20).ok());
  flip_byte("model.safetensors", (7 << 20) / 2 - 1);  // the last byte
  Status s = verify_version(model_, VerifyMode::kSample);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("in bytes 3145728..3670016"), std::string::npos) << s.message();
  flip_byte("model.safetensors", (7 << 20) / 2 - 1);
  flip_byte("model.safetensors", 5);
  s = verify_version(model_, VerifyMode::kSample);
  EXPECT_NE(s.message().find("in bytes 0..1048576"), std::string::npos) << s.message();
}

TEST_F(ManifestTest, SizesFilesAddedAndMissingAreCaughtBeforeHashing) {
  ASSERT_TRUE(write_manifest(model_, int64_t{1} << 20).ok());
  fs::resize_file(dir_ / "model" / "model.safetensors", 1000);
  Status s = verify_version(model_, VerifyMode::kSample);
  EXPECT_NE(s.message().find("model.safetensors is 1000 bytes, the manifest says 3670016"),
            std::string::npos)
      << s.message();
  ASSERT_TRUE(write_manifest(model_, int64_t{1} << 20).ok());
  write_file(dir_ / "model" / "extra.json", "{}");
  s = verify_version(model_, VerifyMode::kFull);
  EXPECT_NE(s.message().find("extra.json is not in the manifest"), std::string::npos);
  fs::remove(dir_ / "model" / "extra.json");
  fs::remove(dir_ / "model" / "config.json");
  s = verify_version(model_, VerifyMode::kFull);
  EXPECT_NE(s.message().find("config.json is in the manifest but missing"), std::string::npos);
}

TEST_F(ManifestTest, NoManifestPassesOnlyInAuto) {
  EXPECT_TRUE(verify_version(model_, VerifyMode::kAuto).ok());
  EXPECT_TRUE(verify_version(model_, VerifyMode::kOff).ok());
  const Status s = verify_version(model_, VerifyMode::kFull);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("r1serve manifest"), std::string::npos);
}

TEST_F(ManifestTest, ABadManifestIsDataLossNamingIt) {
  const std::string path = manifest_path(model_);
  for (const std::string& text :
       {std::string("not json"), std::string("{\"r1serve_manifest\": 2}"),
        std::string(R"({"r1serve_manifest":1,"algorithm":"sha256","chunk_bytes":1048576,)"
                    R"("files":[{"path":"../etc/passwd","bytes":1,"sha256":")") +
            std::string(64, 'a') + "\"}]}",
        std::string(R"({"r1serve_manifest":1,"algorithm":"sha256","chunk_bytes":1048576,)"
                    R"("files":[{"path":"config.json","bytes":1,"sha256":"XYZ"}]})")}) {
    write_file(path, text);
    const Status s = verify_version(model_, VerifyMode::kAuto);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << text;
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace r1
