// Usage per principal, model and model version: requests, prompt / completion / reasoning
// tokens and response-cache hits. With a file, every call's usage is
// appended as one JSON line and synced to disk (fdatasync) before the call's
// response is acknowledged, so a restart, or a crash, loses nothing that was
// answered. Opening the file sums its lines and rewrites it compacted (one
// line per principal, model and version) through a temporary file and a rename. A
// torn last line (a crash mid-write) is dropped; damage anywhere else is an
// error. Thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/status.h"

namespace r1 {

struct UsageTotals {
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t cache_hits = 0;
  UsageTotals& operator+=(const UsageTotals& o);  // saturates at the int64 maximum
};

struct UsageRow {
  std::string principal;
  std::string model;
  std::string version;  // the loaded version that served the calls
  UsageTotals totals;
};

class UsageLedger {
 public:
  // `path` "" keeps usage in memory only.
  static Result<std::unique_ptr<UsageLedger>> open(const std::string& path);
  ~UsageLedger();

  Status add(const std::string& principal, const std::string& model, const std::string& version,
             const UsageTotals& delta);
  // Sorted by principal, then model, then version.
  std::vector<UsageRow> rows() const;

  using Key = std::tuple<std::string, std::string, std::string>;  // principal, model, version

 private:
  UsageLedger() = default;

  std::string path_;
  mutable std::mutex mu_;  // guards everything below
  std::map<Key, UsageTotals> totals_;
  std::FILE* file_ = nullptr;
};

}  // namespace r1
