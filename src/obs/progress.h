// Progress of a long step measured in bytes (converting weights at load):
// on a terminal, one line redrawn in place with the bytes done, the rate and
// the time left; otherwise an info log line every few seconds. Both end
// with a summary line. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace r1 {

class Progress {
 public:
  // `what` names the step ("converting weights to int8"); total in bytes.
  Progress(std::string what, int64_t total_bytes);
  ~Progress();  // finish() unless done
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(int64_t bytes);
  void finish();

  // "1.23 GB", "456 MB", "12.0 kB": decimal units, 3 significant digits.
  static std::string bytes_text(double bytes);

 private:
  void report(bool last);
  using Clock = std::chrono::steady_clock;
  std::mutex mu_;
  std::string what_;
  int64_t total_ = 0;
  int64_t done_ = 0;
  bool tty_ = false;
  bool finished_ = false;
  Clock::time_point start_;
  Clock::time_point last_report_;
};

}  // namespace r1
