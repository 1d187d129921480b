// The access log: one JSON object per line per finished request (DESIGN.md
// §6), for log shippers. Distinct from the stderr diagnostics of log.h and
// from the audit trail.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace r1 {

// One request. Strings may hold any bytes (they come from clients); the
// writer escapes them and replaces invalid UTF-8 with U+FFFD.
struct AccessLogRecord {
  std::chrono::system_clock::time_point time;  // when the request finished
  std::string request_id;
  std::string route;             // route pattern, e.g. "/v1/chat/completions"
  std::string model;             // as resolved by the registry; "" if none
  std::string version;           // model version; "" if none
  std::string principal;         // key or subject id, never the secret; "" if anonymous
  int status = 0;                // HTTP status
  int64_t input_length = 0;      // prompt tokens
  int64_t output_length = 0;     // generated tokens, reasoning included
  int64_t reasoning_length = 0;  // of those, inside <think>...</think>
  // Unknown (the request never queued, never produced a token, ...) -> null.
  std::optional<double> queue_ms;
  std::optional<double> ttft_ms;
  std::optional<double> inference_time_ms;  // first schedule to finish
  std::optional<int64_t> gpu_memory_used;   // bytes; null on the CPU
  // Response cache: "hit", "miss", "bypass" (the client opted out), or ""
  // when the request was not cacheable (written as null).
  std::string cache;
};

// "2024-05-01T12:34:56.789Z"
std::string format_utc_iso8601(std::chrono::system_clock::time_point t);

// The line for `record`, without the trailing newline. Keys in a fixed order:
// time, request_id, route, model, version, principal, status, input_length,
// output_length, reasoning_length, queue_ms, ttft_ms, inference_time_ms,
// gpu_memory_used, cache.
std::string access_log_line(const AccessLogRecord& record);

// Thread-safe writer. Each record is formatted outside the lock, then written
// with one fwrite and flushed under it, so lines from concurrent writers never
// interleave. A disabled log (no sink) accepts and drops records.
class AccessLog {
 public:
  AccessLog() = default;  // disabled
  // Writes to `sink`, which the caller owns and keeps open; nullptr disables.
  explicit AccessLog(std::FILE* sink) : sink_(sink) {}
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Opens `path` for appending (created if missing) and owns it. "-" is stdout.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path);

  bool enabled() const { return sink_ != nullptr; }

  // Returns false when the line could not be written (disk full, closed
  // pipe); the request is not affected.
  bool write(const AccessLogRecord& record);

 private:
  std::mutex mu_;              // serialises writes to sink_
  std::FILE* sink_ = nullptr;  // guarded by mu_ for writing
  bool owned_ = false;         // fclose in the destructor
};

}  // namespace r1
