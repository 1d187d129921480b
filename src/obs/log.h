// Human-readable diagnostics on stderr ("r1serve: warning: ..."). Structured
// JSON access and audit logs come with the server module.
#pragma once

#include <string_view>

namespace r1 {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Messages below this level are dropped. Default kInfo; R1SERVE_LOG_LEVEL
// (debug|info|warning|error) overrides it at start-up.
void set_log_level(LogLevel level);
LogLevel log_level();

// Thread-safe: one line per call.
void log_message(LogLevel level, std::string_view message);
inline void log_info(std::string_view m) {
  log_message(LogLevel::kInfo, m);
}
inline void log_warning(std::string_view m) {
  log_message(LogLevel::kWarning, m);
}
inline void log_error(std::string_view m) {
  log_message(LogLevel::kError, m);
}
inline void log_debug(std::string_view m) {
  log_message(LogLevel::kDebug, m);
}

}  // namespace r1
