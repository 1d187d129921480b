#include "obs/progress.h"

#include <unistd.h>

#include <cstdio>

#include "obs/log.h"

namespace r1 {

namespace {
// How often a terminal line is redrawn, and a log line written otherwise.
constexpr std::chrono::milliseconds kTerminalInterval{200};
constexpr std::chrono::seconds kLogInterval{5};
}  // namespace

Progress::Progress(std::string what, int64_t total_bytes)
    : what_(std::move(what)),
      total_(total_bytes),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_report_(start_) {}

Progress::~Progress() {
  finish();
}

std::string Progress::bytes_text(double bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) {
    bytes /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, bytes >= 100.0 || u == 0 ? "%.0f %s" : "%.3g %s", bytes,
                kUnits[u]);
  return buf;
}

void Progress::add(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += bytes;
  const Clock::time_point now = Clock::now();
  if (now - last_report_ >=
      (tty_ ? Clock::duration(kTerminalInterval) : Clock::duration(kLogInterval))) {
    last_report_ = now;
    report(false);
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  report(true);
}

void Progress::report(bool last) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
  char line[256];
  if (last) {
    if (done_ < total_) {  // ended early: an error is on its way up
      std::snprintf(line, sizeof line, "%s: stopped after %s of %s", what_.c_str(),
                    bytes_text(static_cast<double>(done_)).c_str(),
                    bytes_text(static_cast<double>(total_)).c_str());
    } else {
      std::snprintf(line, sizeof line, "%s: %s in %.1f s (%s/s)", what_.c_str(),
                    bytes_text(static_cast<double>(done_)).c_str(), seconds,
                    bytes_text(rate).c_str());
    }
    if (tty_) std::fputs("\r\033[K", stderr);
    log_info(line);
    return;
  }
  const double left = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  std::snprintf(line, sizeof line, "%s: %s / %s, %s/s, %.0f s left", what_.c_str(),
                bytes_text(static_cast<double>(done_)).c_str(),
                bytes_text(static_cast<double>(total_)).c_str(), bytes_text(rate).c_str(), left);
  if (tty_) {
    std::fprintf(stderr, "\r\033[Kr1serve: %s", line);
    std::fflush(stderr);
  } else {
    log_info(line);
  }
}

}  // namespace r1
