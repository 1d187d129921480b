#include "obs/request_id.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace r1 {
namespace {

bool is_lower_hex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(RequestIdTest, NewIdsAre32HexDigitsAndValid) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = new_request_id();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(is_lower_hex(id)) << id;
    EXPECT_TRUE(is_valid_request_id(id)) << id;
  }
}

TEST(RequestIdTest, UniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;  // 100k in all
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      ids[size_t(t)].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[size_t(t)].push_back(new_request_id());
    });
  }
  for (std::thread& t : threads) t.join();
  std::unordered_set<std::string> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), size_t(kThreads * kPerThread));
}

// Each hex digit should be about equally common: catches a generator that
// leaves part of the id constant.
TEST(RequestIdTest, EveryPositionVaries) {
  std::vector<std::unordered_set<char>> digits(32);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = new_request_id();
    for (size_t p = 0; p < 32; ++p) digits[p].insert(id[p]);
  }
  for (size_t p = 0; p < 32; ++p) EXPECT_EQ(digits[p].size(), 16u) << "position " << p;
}

TEST(RequestIdTest, ClientIdsAreValidated) {
  EXPECT_TRUE(is_valid_request_id("abc"));
  EXPECT_TRUE(is_valid_request_id("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_TRUE(is_valid_request_id("trace=1; span=2 ~!@#$%^&*()"));
  EXPECT_TRUE(is_valid_request_id(std::string(kMaxRequestIdLength, 'x')));

  EXPECT_FALSE(is_valid_request_id(""));
  EXPECT_FALSE(is_valid_request_id(std::string(kMaxRequestIdLength + 1, 'x')));
  EXPECT_FALSE(is_valid_request_id("a\nb"));
  EXPECT_FALSE(is_valid_request_id("a\rb"));
  EXPECT_FALSE(is_valid_request_id("tab\t"));
  EXPECT_FALSE(is_valid_request_id(std::string("nul\0x", 5)));
  EXPECT_FALSE(is_valid_request_id("del\x7f"));
  EXPECT_FALSE(is_valid_request_id("caf\xc3\xa9"));
  EXPECT_FALSE(is_valid_request_id(" leading"));
  EXPECT_FALSE(is_valid_request_id("trailing "));
}

TEST(RequestIdTest, InvalidClientIdsAreReplaced) {
  EXPECT_EQ(request_id_or_new("client-42"), "client-42");
  for (const std::string& bad : {std::string(), std::string("x\ny"), std::string(200, 'a')}) {
    const std::string id = request_id_or_new(bad);
    EXPECT_NE(id, bad);
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(is_lower_hex(id));
  }
}

}  // namespace
}  // namespace r1
