// Checkpoints of generations in flight: the stored form keeps everything a
// resumption needs (round trip, logprobs included, -inf alternatives),
// damaged values are refused rather than resumed, resumption headers parse
// strictly, keys bind the principal, and the shared-directory store keeps,
// expires and removes entries atomically.
#include "server/api/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "server/ops/directory_store.h"

namespace r1 {
namespace {

using nlohmann::json;

Checkpoint sample() {
  Checkpoint c;
  c.request_id = "req:with:colons";
  c.principal = "alice";
  c.route = "/v1/chat/completions";
  c.digest = std::string(64, 'a');
  c.model = "r1";
  c.version = "3";
  c.response_id = "chatcmpl-x";
  c.created = 1796626550;
  c.prompt = {1, 2, 3};
  c.seed = 0xfedcba9876543210ull;  // past 2^53: JSON numbers would lose it
  c.output = {{7, -0.25f, {{7, -0.25f}, {9, -std::numeric_limits<float>::infinity()}}},
              {11, 0.0f, {}},
              {12, -1.5f, {{12, -1.5f}}}};
  c.forced = {1};
  c.sent = 2;
  c.counted_prompt_tokens = 3;
  c.counted_completion_tokens = 2;
  c.counted_reasoning_tokens = 1;
  return c;
}

TEST(CheckpointTest, ItsStoredFormKeepsEverything) {
  const Checkpoint c = sample();
  auto back = Checkpoint::from_json(json::parse(c.to_json().dump()));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->request_id, c.request_id);
  EXPECT_EQ(back->principal, c.principal);
  EXPECT_EQ(back->seed, c.seed);
  EXPECT_EQ(back->prompt, c.prompt);
  ASSERT_EQ(back->output.size(), 3u);
  EXPECT_EQ(back->output[0].id, 7);
  EXPECT_EQ(back->output[0].logprob, -0.25f);
  ASSERT_EQ(back->output[0].top.size(), 2u);
  EXPECT_TRUE(std::isinf(back->output[0].top[1].logprob) && back->output[0].top[1].logprob < 0);
  EXPECT_EQ(back->output[2].top[0].id, 12);
  EXPECT_EQ(back->forced, c.forced);
  EXPECT_EQ(back->sent, 2);
  EXPECT_EQ(back->counted_completion_tokens, 2);
  // Without logprobs the output is ids alone.
  Checkpoint plain = c;
  for (SampledToken& t : plain.output) t = SampledToken{t.id, 0.0f, {}};
  EXPECT_FALSE(plain.to_json().contains("logprobs"));
}

TEST(CheckpointTest, DamagedValuesAreRefused) {
  const json good = sample().to_json();
  auto damaged = [&](auto change) {
    json j = good;
    change(j);
    return Checkpoint::from_json(j);
  };
  EXPECT_FALSE(damaged([](json& j) { j["format"] = 99; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j.erase("prompt"); }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["prompt"] = json::array(); }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["forced"] = {2, 1}; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["forced"] = {3}; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["sent"] = 4; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["seed"] = "x"; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["seed"] = "-1"; }).ok());
  EXPECT_FALSE(damaged([](json& j) { j["logprobs"].erase(0); }).ok());
  EXPECT_FALSE(Checkpoint::from_json(json("text")).ok());
}

TEST(CheckpointTest, KeysBindThePrincipal) {
  EXPECT_NE(checkpoint_key("alice", "r1"), checkpoint_key("bob", "r1"));
  EXPECT_NE(checkpoint_key("a", "b\nc"), checkpoint_key("a\nb", "c"));
  EXPECT_EQ(checkpoint_key("alice", "r1").size(), 64u);
}

TEST(CheckpointTest, ResumptionHeadersParseStrictly) {
  auto t = resume_target("req:with:colons:17", "");
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->request_id, "req:with:colons");
  EXPECT_EQ((*t)->client_has, 17);
  t = resume_target("", "abc");
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->request_id, "abc");
  EXPECT_FALSE((*t)->client_has.has_value());
  t = resume_target("", "");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->has_value());
  for (const char* bad : {"abc", ":5", "abc:", "abc:5x", "abc:-1", "abc:12345678901"}) {
    EXPECT_FALSE(resume_target(bad, "").ok()) << bad;
  }
  EXPECT_EQ(sse_event_id("r", 5), "r:5");
}

class DirectoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("r1serve-dir-store-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(DirectoryStoreTest, KeepsExpiresAndRemovesEntries) {
  auto store = DirectoryStore::open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().message();
  DirectoryStore& s = **store;
  const std::string key(64, 'b');
  EXPECT_FALSE(s.get(key)->has_value());
  ASSERT_TRUE(s.put(key, std::string("line one\nline two\0bytes", 23), 60).ok());
  auto got = s.get(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, std::string("line one\nline two\0bytes", 23));
  ASSERT_TRUE(s.put(key, "newer", 60).ok());  // replaced whole
  EXPECT_EQ(**s.get(key), "newer");
  ASSERT_TRUE(s.remove(key).ok());
  EXPECT_FALSE(s.get(key)->has_value());
  EXPECT_TRUE(s.remove(key).ok());  // absent is fine
  // An entry past its time (as a replica that wrote it long ago left it)
  // reads as absent and is deleted.
  std::ofstream(dir_ / (key + ".entry")) << "1000\nold value";
  EXPECT_FALSE(s.get(key)->has_value());
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  // Keys are digests: nothing that could name a path elsewhere.
  EXPECT_FALSE(s.put("../escape", "x", 60).ok());
  EXPECT_FALSE(s.get("a/b").ok());
}

TEST_F(DirectoryStoreTest, AFileThatIsNotAnEntryReadsAsAbsent) {
  auto store = DirectoryStore::open(dir_.string());
  ASSERT_TRUE(store.ok());
  const std::string key(64, 'c');
  std::ofstream(dir_ / (key + ".entry")) << "not a number\nvalue";
  EXPECT_FALSE((*store)->get(key)->has_value());
}

}  // namespace
}  // namespace r1
