// The audit trail's hash chain: intact logs verify, across rotation and
// reopening; a flipped byte is reported at the record it was flipped in; a
// deleted or reordered record at the record after the gap; records cut off
// the end are found by the head, which also stops the log from extending a
// cut chain.
#include "server/ops/audit_log.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/auth/api_key_store.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("r1-audit-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "audit.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static AuditRecord record(int i) {
    AuditRecord r;
    r.time = "2026-11-28T00:00:0" + std::to_string(i % 10) + "Z";
    r.event = "call";
    r.request_id = "req-" + std::to_string(i);
    r.principal = "team-a";
    r.role = "developer";
    r.route = "/v1/chat/completions";
    r.status = 200;
    r.prompt_tokens = 10 + i;
    r.completion_tokens = i;
    r.client = "10.0.0.1";
    return r;
  }
  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void rewrite(const std::vector<std::string>& ls) const {
    std::ofstream out(path_, std::ios::trunc);
    for (const auto& l : ls) out << l << "\n";
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, IntactChainVerifiesAcrossReopen) {
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  {
    auto log = AuditLog::open(path_);  // continues the chain
    ASSERT_TRUE(log.ok());
    for (int i = 5; i < 8; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  EXPECT_EQ(lines().size(), 8u);
  EXPECT_TRUE(verify_audit_chain({path_}).ok()) << verify_audit_chain({path_}).message();
  EXPECT_NE(lines()[0].find(kAuditGenesis), std::string::npos);
}

TEST_F(AuditLogTest, FlippedByteIsReportedAtItsRecord) {
  {
    auto log = AuditLog::open(path_);
    for (int i = 0; i < 9; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  std::vector<std::string> ls = lines();
  const size_t at = ls[4].find("team-a");
  ASSERT_NE(at, std::string::npos);
  ls[4][at] = 'T';  // one byte in the fifth record
  rewrite(ls);
  const Status s = verify_audit_chain({path_});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("line 5 (record 5)"), std::string::npos) << s.message();
}

TEST_F(AuditLogTest, DeletedOrReorderedRecordsBreakTheChain) {
  {
    auto log = AuditLog::open(path_);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  const std::vector<std::string> original = lines();
  std::vector<std::string> ls = original;
  ls.erase(ls.begin() + 2);
  rewrite(ls);
  Status s = verify_audit_chain({path_});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("record 3"), std::string::npos) << s.message();

  ls = original;
  std::swap(ls[1], ls[3]);
  rewrite(ls);
  s = verify_audit_chain({path_});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("record 2"), std::string::npos) << s.message();
}

TEST_F(AuditLogTest, RotationKeepsTheChainAcrossFiles) {
  {
    auto log = AuditLog::open(path_, /*max_bytes=*/900, /*keep_files=*/5);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 12; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  std::vector<std::string> files;
  for (int i = 5; i >= 1; --i) {
    const std::string f = path_ + "." + std::to_string(i);
    if (fs::exists(f)) files.push_back(f);
  }
  ASSERT_GE(files.size(), 2u) << "no rotation happened";
  files.push_back(path_);
  const Status s = verify_audit_chain(files);
  EXPECT_TRUE(s.ok()) << s.message();
  // Out of order, the files do not chain.
  std::vector<std::string> wrong(files.rbegin(), files.rend());
  EXPECT_FALSE(verify_audit_chain(wrong).ok());
}

TEST_F(AuditLogTest, RecordsCutOffTheEndAreFoundByTheHead) {
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  const std::vector<std::string> original = lines();
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_NE(original[i].find("\"seq\":" + std::to_string(i + 1) + ","), std::string::npos)
        << original[i];
  }
  Result<AuditHead> head = read_audit_head(path_ + ".head");
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->seq, 6);
  EXPECT_TRUE(verify_audit_chain({path_}).ok());
  // A copy of the head kept elsewhere checks the same.
  const std::string kept = (dir_ / "kept.head").string();
  fs::copy_file(path_ + ".head", kept);

  // The last two records removed: the chain itself is still intact.
  rewrite(std::vector<std::string>(original.begin(), original.end() - 2));
  Status s = verify_audit_chain({path_});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("2 record(s) are missing"), std::string::npos) << s.message();
  // Nor does the log extend the cut chain.
  auto reopened = AuditLog::open(path_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kDataLoss);
  // Rewriting the head beside the log hides it, but not from the kept copy.
  fs::remove(path_ + ".head");
  EXPECT_TRUE(verify_audit_chain({path_}).ok());
  s = verify_audit_chain({path_}, kept);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing from the end"), std::string::npos) << s.message();
  // A head that names another last record.
  rewrite(original);
  {
    std::ofstream out(kept, std::ios::trunc);
    out << R"({"seq": 6, "hash": "00ff"})"
        << "\n";
  }
  s = verify_audit_chain({path_}, kept);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another hash"), std::string::npos) << s.message();
  // A head that was asked for must exist.
  EXPECT_FALSE(verify_audit_chain({path_}, (dir_ / "absent.head").string()).ok());
}

TEST_F(AuditLogTest, SeqRunsOnAcrossReopenAndRotation) {
  {
    auto log = AuditLog::open(path_, /*max_bytes=*/900, /*keep_files=*/5);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  {
    auto log = AuditLog::open(path_, 900, 5);
    ASSERT_TRUE(log.ok()) << log.status().message();
    for (int i = 5; i < 12; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  std::vector<std::string> files;
  for (int i = 5; i >= 1; --i) {
    const std::string f = path_ + "." + std::to_string(i);
    if (fs::exists(f)) files.push_back(f);
  }
  files.push_back(path_);
  EXPECT_TRUE(verify_audit_chain(files).ok()) << verify_audit_chain(files).message();
  EXPECT_EQ(read_audit_head(path_ + ".head")->seq, 12);
  EXPECT_NE(lines().back().find("\"seq\":12,"), std::string::npos) << lines().back();
}

TEST_F(AuditLogTest, AHeadThatLagsOrCannotBeWrittenIsNoFailure) {
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->write(record(i)).ok());
  }
  const std::string head_before = [&] {
    std::ifstream in(path_ + ".head");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  // The head's aside file blocked: records still go in, the head lags.
  fs::create_directories(path_ + ".head.tmp");
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok()) << log.status().message();
    for (int i = 3; i < 5; ++i) EXPECT_TRUE((*log)->write(record(i)).ok());
  }
  EXPECT_EQ(read_audit_head(path_ + ".head")->seq, 3);
  EXPECT_EQ(lines().size(), 5u);
  EXPECT_TRUE(verify_audit_chain({path_}).ok()) << verify_audit_chain({path_}).message();
  fs::remove_all(path_ + ".head.tmp");
  // A record from a build without seq (a rollback) at the end: numbering
  // goes on past every seq already used instead of refusing to open.
  (void)head_before;
  {
    const std::string last = lines().back();
    const std::string prev = last.substr(last.rfind(",\"hash\":\"") + 9, 64);
    const std::string body = R"({"time":"t","event":"call","prev":")" + prev + "\"";
    std::ofstream out(path_, std::ios::app);
    out << body << ",\"hash\":\"" << sha256_hex(body) << "\"}\n";
  }
  ASSERT_TRUE(verify_audit_chain({path_}).ok()) << verify_audit_chain({path_}).message();
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->write(record(5)).ok());
  }
  EXPECT_NE(lines().back().find("\"seq\":6,"), std::string::npos) << lines().back();
  EXPECT_TRUE(verify_audit_chain({path_}).ok()) << verify_audit_chain({path_}).message();
  // An emptied log with a head: every record is gone, so it will not open.
  rewrite({});
  fs::remove(path_ + ".1");
  EXPECT_FALSE(AuditLog::open(path_).ok());
}

}  // namespace
}  // namespace r1
