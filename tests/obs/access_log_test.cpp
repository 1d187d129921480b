#include "obs/access_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace r1 {
namespace {

using nlohmann::json;

AccessLogRecord sample_record() {
  AccessLogRecord r;
  // 1714566896 s after the epoch is 2024-05-01T12:34:56Z.
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714566896789));
  r.request_id = "0123456789abcdef0123456789abcdef";
  r.route = "/v1/chat/completions";
  r.model = "r1-1.5b";
  r.version = "2024-05-01";
  r.principal = "key:ops-team";
  r.status = 200;
  r.input_length = 17;
  r.output_length = 120;
  r.reasoning_length = 90;
  r.queue_ms = 1.5;
  r.ttft_ms = 12.3456789;
  r.inference_time_ms = 840.25;
  r.gpu_memory_used = int64_t(3) << 30;
  r.cache = "hit";
  return r;
}

// Reads every line of `path`.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("r1_obs_" + name + "_" + std::to_string(::getpid()) + ".jsonl"))
      .string();
}

TEST(AccessLogTest, IsoTimeIsUtcWithMilliseconds) {
  using std::chrono::milliseconds;
  using TP = std::chrono::system_clock::time_point;
  EXPECT_EQ(format_utc_iso8601(TP(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_utc_iso8601(TP(milliseconds(1714566896789))), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(format_utc_iso8601(TP(milliseconds(951782400005))), "2000-02-29T00:00:00.005Z");
  EXPECT_EQ(format_utc_iso8601(TP(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

TEST(AccessLogTest, LineHasEveryFieldWithItsValue) {
  const std::string line = access_log_line(sample_record());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const json j = json::parse(line);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 15u);
  EXPECT_EQ(j["time"], "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(j["request_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["route"], "/v1/chat/completions");
  EXPECT_EQ(j["model"], "r1-1.5b");
  EXPECT_EQ(j["version"], "2024-05-01");
  EXPECT_EQ(j["principal"], "key:ops-team");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["input_length"], 17);
  EXPECT_EQ(j["output_length"], 120);
  EXPECT_EQ(j["reasoning_length"], 90);
  EXPECT_DOUBLE_EQ(j["queue_ms"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["ttft_ms"].get<double>(), 12.346);  // microsecond precision
  EXPECT_DOUBLE_EQ(j["inference_time_ms"].get<double>(), 840.25);
  EXPECT_EQ(j["gpu_memory_used"], int64_t(3) << 30);
  EXPECT_EQ(j["cache"], "hit");
  // Fixed key order, time first, for people reading the file.
  EXPECT_EQ(line.rfind("{\"time\":", 0), 0u);
}

TEST(AccessLogTest, UnknownTimesAndCpuMemoryAreNull) {
  AccessLogRecord r = sample_record();
  r.status = 400;
  r.queue_ms.reset();
  r.ttft_ms.reset();
  r.inference_time_ms.reset();
  r.gpu_memory_used.reset();
  r.cache.clear();
  const json j = json::parse(access_log_line(r));
  for (const char* key : {"queue_ms", "ttft_ms", "inference_time_ms", "gpu_memory_used", "cache"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_null()) << key;
  }
  EXPECT_EQ(j["status"], 400);
}

TEST(AccessLogTest, ClientStringsAreEscaped) {
  AccessLogRecord r = sample_record();
  r.request_id = "id with \"quotes\" and \\ backslash";
  r.model = "line1\nline2\r\t\x01";
  r.principal = "user:\xc3\xa9t\xc3\xa9 \xe6\x80\x9d \xf0\x9f\xa4\x94";  // été 思 🤔
  r.version = "bad \xff\xfe utf8";
  const std::string line = access_log_line(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  const json j = json::parse(line);
  EXPECT_EQ(j["request_id"], r.request_id);
  EXPECT_EQ(j["model"], r.model);
  EXPECT_EQ(j["principal"], r.principal);  // valid UTF-8 passes through unchanged
  // Invalid bytes become U+FFFD instead of making the line unparsable.
  EXPECT_EQ(j["version"], "bad \xef\xbf\xbd\xef\xbf\xbd utf8");
}

TEST(AccessLogTest, DisabledLogAcceptsRecords) {
  AccessLog log;
  EXPECT_FALSE(log.enabled());
  EXPECT_TRUE(log.write(sample_record()));
  AccessLog null_sink(nullptr);
  EXPECT_FALSE(null_sink.enabled());
  EXPECT_TRUE(null_sink.write(sample_record()));
}

TEST(AccessLogTest, OpenAppendsToTheFile) {
  const std::string path = temp_path("append");
  std::filesystem::remove(path);
  {
    auto log = AccessLog::open(path);
    ASSERT_TRUE(log.ok()) << log.status().to_string();
    EXPECT_TRUE((*log)->enabled());
    EXPECT_TRUE((*log)->write(sample_record()));
    // Flushed per line: visible before the log is closed.
    EXPECT_EQ(read_lines(path).size(), 1u);
  }
  {
    auto log = AccessLog::open(path);
    ASSERT_TRUE(log.ok());
    AccessLogRecord r = sample_record();
    r.request_id = "second";
    EXPECT_TRUE((*log)->write(r));
  }
  const std::vector<std::string> lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["request_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(json::parse(lines[1])["request_id"], "second");
  std::filesystem::remove(path);
}

TEST(AccessLogTest, OpenReportsAnUnwritablePath) {
  auto log = AccessLog::open("/nonexistent-dir-r1serve/access.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("/nonexistent-dir-r1serve/access.jsonl"),
            std::string::npos);
}

TEST(AccessLogTest, ConcurrentWritersNeverInterleave) {
  const std::string path = temp_path("concurrent");
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  {
    AccessLog log(f);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        AccessLogRecord r = sample_record();
        // Long lines (several KiB) so that a torn write would show.
        r.principal = std::string(size_t(2000 + 300 * t), char('a' + t));
        for (int i = 0; i < kPerThread; ++i) {
          r.request_id = std::to_string(t) + "-" + std::to_string(i);
          log.write(r);
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  std::fclose(f);

  const std::vector<std::string> lines = read_lines(path);
  ASSERT_EQ(lines.size(), size_t(kThreads * kPerThread));
  std::map<std::string, int> seen;
  for (const std::string& line : lines) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << line.substr(0, 200);
    const std::string id = j["request_id"];
    const int t = std::stoi(id.substr(0, id.find('-')));
    EXPECT_EQ(j["principal"], std::string(size_t(2000 + 300 * t), char('a' + t)));
    ++seen[id];
  }
  EXPECT_EQ(seen.size(), size_t(kThreads * kPerThread));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace r1
