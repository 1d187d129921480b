// Per-principal limits (requests per second, tokens per minute, concurrent
// requests) and a global concurrency cap, as token buckets on an injectable
// clock. Refusals carry what OpenAI's API sends: 429 with Retry-After and
// x-ratelimit-{limit,remaining,reset}-{requests,tokens}. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "server/auth/api_key_store.h"

namespace r1 {

class RateLimiter {
 public:
  using Clock = std::function<double()>;  // monotonic seconds

  // global_concurrency: requests in flight across all principals; 0 = no cap.
  explicit RateLimiter(int global_concurrency = 0, Clock clock = steady_seconds);

  struct Decision {
    bool allowed = false;
    int retry_after_seconds = 0;  // when refused
    std::string message;          // when refused
    std::map<std::string, std::string> headers;
  };

  // Admits one request of `principal`; an admitted request must be
  // release()d exactly once when it ends. A tokens-per-minute bucket in debt
  // (charged after the fact) refuses until it refills.
  Decision admit(const std::string& principal, const PrincipalLimits& limits);
  void release(const std::string& principal);
  // Charges prompt + completion tokens to the principal's per-minute budget.
  void charge_tokens(const std::string& principal, int64_t tokens);

 private:
  struct Bucket {
    double level = 0, capacity = 0, per_second = 0, updated = 0;
    void refill(double now);
  };
  struct State {
    PrincipalLimits limits;
    Bucket requests, tokens;
    int in_flight = 0;
    bool initialised = false;
  };
  void configure(State& s, const PrincipalLimits& limits, double now);

  int global_concurrency_;
  Clock clock_;
  std::mutex mu_;  // guards everything below
  std::unordered_map<std::string, State> states_;
  int global_in_flight_ = 0;
};

}  // namespace r1
