#include "obs/access_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

namespace r1 {

std::string format_utc_iso8601(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms_since_epoch = duration_cast<milliseconds>(t.time_since_epoch()).count();
  // Floor division so times before 1970 still get a millisecond part in 0..999.
  int64_t secs = ms_since_epoch / 1000;
  int64_t ms = ms_since_epoch % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
  return buf;
}

namespace {

// Milliseconds to microsecond precision: "12.346", not "12.345678901".
nlohmann::ordered_json millis(const std::optional<double>& ms) {
  if (!ms.has_value() || !std::isfinite(*ms)) return nullptr;
  return std::round(*ms * 1000.0) / 1000.0;
}

}  // namespace

std::string access_log_line(const AccessLogRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = format_utc_iso8601(r.time);
  j["request_id"] = r.request_id;
  j["route"] = r.route;
  j["model"] = r.model;
  j["version"] = r.version;
  j["principal"] = r.principal;
  j["status"] = r.status;
  j["input_length"] = r.input_length;
  j["output_length"] = r.output_length;
  j["reasoning_length"] = r.reasoning_length;
  j["queue_ms"] = millis(r.queue_ms);
  j["ttft_ms"] = millis(r.ttft_ms);
  j["inference_time_ms"] = millis(r.inference_time_ms);
  if (r.gpu_memory_used.has_value()) {
    j["gpu_memory_used"] = *r.gpu_memory_used;
  } else {
    j["gpu_memory_used"] = nullptr;
  }
  if (r.cache.empty()) {
    j["cache"] = nullptr;
  } else {
    j["cache"] = r.cache;
  }
  // replace: client strings are not guaranteed UTF-8, and dump() must not
  // throw on a request path.
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

AccessLog::~AccessLog() {
  if (owned_ && sink_ != nullptr) std::fclose(sink_);
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path) {
  if (path == "-") return std::make_unique<AccessLog>(stdout);
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    return Status(StatusCode::kNotFound,
                  "access log " + path + ": cannot open for appending: " + std::strerror(errno));
  }
  auto log = std::make_unique<AccessLog>(f);
  log->owned_ = true;
  return log;
}

bool AccessLog::write(const AccessLogRecord& record) {
  if (sink_ == nullptr) return true;
  std::string line = access_log_line(record);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = std::fwrite(line.data(), 1, line.size(), sink_);
  const bool flushed = std::fflush(sink_) == 0;
  return n == line.size() && flushed;
}

}  // namespace r1
