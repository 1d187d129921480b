#pragma once

#include <chrono>

namespace r1 {

// Seconds on the monotonic clock (std::chrono::steady_clock): the default
// clock of the rate limiter and the response-cache stores, which take a
// clock as a function so tests can move time themselves.
inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace r1
