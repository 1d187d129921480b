#include "obs/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace r1 {

namespace {
LogLevel initial_level() {
  const char* env = std::getenv("R1SERVE_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "warning") == 0) return LogLevel::kWarning;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}
std::atomic<LogLevel> g_level{initial_level()};
std::mutex g_mu;  // serialises lines on stderr
}  // namespace

void set_log_level(LogLevel level) {
  g_level.store(level);
}
LogLevel log_level() {
  return g_level.load();
}

void log_message(LogLevel level, std::string_view message) {
  if (level < g_level.load()) return;
  const char* tag = "";
  switch (level) {
    case LogLevel::kDebug:
      tag = "debug: ";
      break;
    case LogLevel::kInfo:
      tag = "";
      break;
    case LogLevel::kWarning:
      tag = "warning: ";
      break;
    case LogLevel::kError:
      tag = "error: ";
      break;
  }
  std::string line = "r1serve: ";
  line += tag;
  line += message;
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace r1
