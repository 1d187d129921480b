// The audit trail: append-only JSON lines, one per authenticated call and
// per auth failure. Each line ends with "prev" (the previous record's hash)
// and "hash" (SHA-256, hex, of the line's bytes before `,"hash":`), so an
// edited record fails its own hash and a deleted or reordered one breaks
// the next record's prev: verify_audit_chain reports the first such record. Rotation moves the
// file to FILE.1 (older ones to .2, ...) and the new file's first record
// points at the last record of the old one, so the chain spans files.
//
// The chain alone cannot show that records were cut off its end. So every
// record also carries "seq" (1, 2, ... across rotation), and after each
// record FILE.head is replaced (written aside, then renamed) with the seq
// and hash of the newest record: a log that ends before its head has lost
// records. The head sits beside the log, so it protects against truncation
// by accident (a restored backup, a crash of the disk, a careless edit) and
// by anyone who can change the log but not the head; against someone who
// can rewrite both, compare with a copy of the head kept elsewhere
// (`audit-verify --head`), e.g. shipped with the log lines.
// Thread-safe; every record is flushed before write() returns.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace r1 {

struct AuditRecord {
  std::string time;  // ISO 8601 UTC
  std::string request_id;
  std::string principal;  // id, never a secret; "" when the credentials failed
  std::string role;
  std::string route;
  std::string model;
  std::string version;
  int status = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  bool cache_hit = false;  // answered from the response cache
  std::string client;      // remote address
  std::string event;       // "call", "resume", "auth_failure" or "rate_limited"
  std::string source;      // how the principal was identified: api_key, jwt, forwarded
  // The request's prompt (messages, prompt or text, as JSON) when the server
  // records prompts (--audit-prompts); omitted otherwise.
  std::string prompt;
  // A "resume" call: the request id of the generation it resumed (begun on
  // another replica, or on this one before the client lost it).
  std::string resumes;
};

class AuditLog {
 public:
  // Opens (or creates) `path` for appending; the chain continues from its
  // last line. max_bytes > 0 rotates once the file would exceed it.
  // DATA_LOSS, extending nothing, when the last line is not a record or
  // FILE.head names a newer record than the log's last one.
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path, int64_t max_bytes = 0,
                                                int keep_files = 5);
  ~AuditLog();

  Status write(const AuditRecord& record);
  // The last `n` records of the current file (oldest first), as written.
  std::vector<std::string> tail(size_t n);

 private:
  AuditLog() = default;
  Status rotate();

  std::mutex mu_;  // guards everything below
  std::string path_;
  int64_t max_bytes_ = 0;
  int keep_files_ = 5;
  std::FILE* file_ = nullptr;
  int64_t size_ = 0;
  std::string last_hash_;     // of the last line written (or found)
  int64_t last_seq_ = 0;      // of the last line written (or found); 0 = none
  bool head_failed_ = false;  // the last head write failed (reported once)
};

// The newest record's place in the chain, as FILE.head keeps it.
struct AuditHead {
  int64_t seq = 0;
  std::string hash;
};

// Reads a head file; NOT_FOUND when it does not exist, DATA_LOSS when it is
// not a head.
Result<AuditHead> read_audit_head(const std::string& path);

// The hash the first record of a fresh chain points at.
inline constexpr const char* kAuditGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Checks the chain over `paths` (oldest first, e.g. FILE.2 FILE.1 FILE):
// every record's hash, its prev, and its seq following the one before.
// Then the end against a head: `head_path`, or else the last file's
// FILE.head when it exists. OK when intact; DATA_LOSS naming the file, line
// and record otherwise, or how many records the head says are missing.
Status verify_audit_chain(const std::vector<std::string>& paths, const std::string& head_path = "");

}  // namespace r1
