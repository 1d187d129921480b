// Usage metering: totals per principal and model, persisted line by line
// and read back after a restart, compacted on open; a torn last line (a
// crash mid-write) is dropped, damage elsewhere refused.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "server/ops/usage_ledger.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

class UsageLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("r1-usage-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "usage.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  int count_lines() {
    std::ifstream in(path_);
    int n = 0;
    for (std::string l; std::getline(in, l);) n += !l.empty();
    return n;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(UsageLedgerTest, SumsPerPrincipalAndModelAndSurvivesRestarts) {
  {
    auto ledger = UsageLedger::open(path_);
    ASSERT_TRUE(ledger.ok()) << ledger.status().message();
    ASSERT_TRUE((*ledger)->add("alice", "m1", "1", {1, 10, 5, 2, 0}).ok());
    ASSERT_TRUE((*ledger)->add("alice", "m1", "1", {1, 7, 3, 0, 1}).ok());
    ASSERT_TRUE((*ledger)->add("bob", "m1", "1", {1, 1, 1, 1, 0}).ok());
    ASSERT_TRUE((*ledger)->add("alice", "m2", "1", {1, 2, 2, 0, 0}).ok());
  }  // no clean shutdown step exists: every add is already on disk
  EXPECT_EQ(count_lines(), 4);
  auto again = UsageLedger::open(path_);
  ASSERT_TRUE(again.ok());
  const auto rows = (*again)->rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].principal, "alice");
  EXPECT_EQ(rows[0].model, "m1");
  EXPECT_EQ(rows[0].totals.requests, 2);
  EXPECT_EQ(rows[0].totals.prompt_tokens, 17);
  EXPECT_EQ(rows[0].totals.completion_tokens, 8);
  EXPECT_EQ(rows[0].totals.reasoning_tokens, 2);
  EXPECT_EQ(rows[0].totals.cache_hits, 1);
  EXPECT_EQ(rows[1].model, "m2");
  EXPECT_EQ(rows[2].principal, "bob");
  EXPECT_EQ(count_lines(), 3) << "opening compacts to one line per principal and model";
  ASSERT_TRUE((*again)->add("bob", "m1", "1", {1, 4, 4, 0, 0}).ok());
  again->reset();
  auto third = UsageLedger::open(path_);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->rows()[2].totals.prompt_tokens, 5);
}

// Each loaded version of a model has its own totals, so a canary's usage is
// told apart; a line written before versions were metered reads as
// version "".
TEST_F(UsageLedgerTest, VersionsAreMeteredApart) {
  std::ofstream(path_) << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,"
                          "\"prompt_tokens\":3,\"completion_tokens\":1,"
                          "\"reasoning_tokens\":0,\"cache_hits\":0}\n";
  {
    auto ledger = UsageLedger::open(path_);
    ASSERT_TRUE(ledger.ok()) << ledger.status().message();
    ASSERT_TRUE((*ledger)->add("a", "m", "1", {1, 10, 5, 0, 0}).ok());
    ASSERT_TRUE((*ledger)->add("a", "m", "2", {1, 20, 6, 0, 0}).ok());
    ASSERT_TRUE((*ledger)->add("a", "m", "1", {1, 30, 7, 0, 0}).ok());
  }
  auto again = UsageLedger::open(path_);
  ASSERT_TRUE(again.ok());
  const auto rows = (*again)->rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].version, "");
  EXPECT_EQ(rows[0].totals.prompt_tokens, 3);
  EXPECT_EQ(rows[1].version, "1");
  EXPECT_EQ(rows[1].totals.prompt_tokens, 40);
  EXPECT_EQ(rows[1].totals.requests, 2);
  EXPECT_EQ(rows[2].version, "2");
  EXPECT_EQ(rows[2].totals.completion_tokens, 6);
  // A version that is not a string is damage.
  again->reset();
  std::ofstream(path_, std::ios::trunc)
      << "{\"principal\":\"a\",\"model\":\"m\",\"version\":2,\"requests\":1,"
         "\"prompt_tokens\":3,\"completion_tokens\":1,\"reasoning_tokens\":0,"
         "\"cache_hits\":0}\n{}\n";
  EXPECT_FALSE(UsageLedger::open(path_).ok());
}

TEST_F(UsageLedgerTest, ATornLastLineIsDroppedOtherDamageIsAnError) {
  {
    auto ledger = UsageLedger::open(path_);
    ASSERT_TRUE((*ledger)->add("alice", "m", "1", {1, 10, 5, 0, 0}).ok());
  }
  std::ofstream(path_, std::ios::app) << "{\"principal\":\"alice\",\"mod";
  auto torn = UsageLedger::open(path_);
  ASSERT_TRUE(torn.ok()) << torn.status().message();
  ASSERT_EQ((*torn)->rows().size(), 1u);
  EXPECT_EQ((*torn)->rows()[0].totals.prompt_tokens, 10);
  torn->reset();
  std::ofstream(path_, std::ios::trunc) << "garbage\n"
                                        << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,"
                                           "\"prompt_tokens\":1,\"completion_tokens\":1,"
                                           "\"reasoning_tokens\":0,\"cache_hits\":0}\n";
  auto bad = UsageLedger::open(path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos);
}

// A count that is a float, negative, or past int64 is a damaged line; sums
// stop at the int64 maximum instead of wrapping.
TEST_F(UsageLedgerTest, CountsAreNonNegativeIntegersAndSumsSaturate) {
  for (const char* count : {"4.4e47", "1.5", "-3", "99999999999999999999"}) {
    std::ofstream(path_, std::ios::trunc)
        << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,\"prompt_tokens\":" << count
        << ",\"completion_tokens\":1,\"reasoning_tokens\":0,\"cache_hits\":0}\n"
        << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,\"prompt_tokens\":1,"
           "\"completion_tokens\":1,\"reasoning_tokens\":0,\"cache_hits\":0}\n";
    auto bad = UsageLedger::open(path_);
    EXPECT_FALSE(bad.ok()) << count;
  }
  const int64_t max = std::numeric_limits<int64_t>::max();
  std::ofstream(path_, std::ios::trunc)
      << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,\"prompt_tokens\":" << max
      << ",\"completion_tokens\":1,\"reasoning_tokens\":0,\"cache_hits\":0}\n"
      << "{\"principal\":\"a\",\"model\":\"m\",\"requests\":1,\"prompt_tokens\":" << max
      << ",\"completion_tokens\":1,\"reasoning_tokens\":0,\"cache_hits\":0}\n";
  auto ledger = UsageLedger::open(path_);
  ASSERT_TRUE(ledger.ok()) << ledger.status().message();
  ASSERT_EQ((*ledger)->rows().size(), 1u);
  EXPECT_EQ((*ledger)->rows()[0].totals.prompt_tokens, max);
  EXPECT_EQ((*ledger)->rows()[0].totals.requests, 2);
}

TEST(UsageLedgerMemoryTest, WithoutAFileUsageStaysInMemory) {
  auto ledger = UsageLedger::open("");
  ASSERT_TRUE(ledger.ok());
  ASSERT_TRUE((*ledger)->add("p", "m", "1", {1, 2, 3, 1, 0}).ok());
  EXPECT_EQ((*ledger)->rows().at(0).totals.completion_tokens, 3);
}

}  // namespace
}  // namespace r1
