#include "server/auth/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace r1 {

namespace {

// OpenAI's duration format for x-ratelimit-reset-*: "1s", "6m0s", "250ms".
std::string reset_text(double seconds) {
  if (seconds <= 0) return "0s";
  if (seconds < 1) return std::to_string(static_cast<int>(std::ceil(seconds * 1000))) + "ms";
  const int s = static_cast<int>(std::ceil(seconds));
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

}  // namespace

RateLimiter::RateLimiter(int global_concurrency, Clock clock)
    : global_concurrency_(global_concurrency), clock_(std::move(clock)) {}

void RateLimiter::Bucket::refill(double now) {
  if (per_second > 0) level = std::min(capacity, level + (now - updated) * per_second);
  updated = now;
}

void RateLimiter::configure(State& s, const PrincipalLimits& l, double now) {
  // A key file reload may change the limits: buckets keep their level,
  // clipped to the new capacity.
  const bool fresh = !s.initialised;
  s.limits = l;
  s.requests.capacity = std::max(1.0, l.requests_per_second);  // one second of burst
  s.requests.per_second = l.requests_per_second;
  s.tokens.capacity = static_cast<double>(l.tokens_per_minute);
  s.tokens.per_second = static_cast<double>(l.tokens_per_minute) / 60.0;
  if (fresh) {
    s.requests.level = s.requests.capacity;
    s.tokens.level = s.tokens.capacity;
    s.requests.updated = s.tokens.updated = now;
    s.initialised = true;
  }
  s.requests.level = std::min(s.requests.level, s.requests.capacity);
  s.tokens.level = std::min(s.tokens.level, s.tokens.capacity);
}

RateLimiter::Decision RateLimiter::admit(const std::string& principal,
                                         const PrincipalLimits& limits) {
  const double now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  State& s = states_[principal];
  configure(s, limits, now);
  s.requests.refill(now);
  s.tokens.refill(now);

  Decision d;
  if (limits.requests_per_second > 0) {
    d.headers["x-ratelimit-limit-requests"] =
        std::to_string(static_cast<int64_t>(std::ceil(limits.requests_per_second)));
  }
  if (limits.tokens_per_minute > 0) {
    d.headers["x-ratelimit-limit-tokens"] = std::to_string(limits.tokens_per_minute);
  }
  auto refuse = [&](double wait, std::string message) {
    d.allowed = false;
    d.retry_after_seconds = std::max(1, static_cast<int>(std::ceil(wait)));
    d.message = std::move(message);
    d.headers["Retry-After"] = std::to_string(d.retry_after_seconds);
    return d;
  };
  if (global_concurrency_ > 0 && global_in_flight_ >= global_concurrency_) {
    return refuse(1, "the server is at its concurrency limit; retry shortly");
  }
  if (limits.max_concurrent > 0 && s.in_flight >= limits.max_concurrent) {
    return refuse(1, "principal '" + principal + "' has " + std::to_string(s.in_flight) +
                         " requests in flight, its limit");
  }
  if (limits.requests_per_second > 0) {
    if (s.requests.level < 1.0) {
      const double wait = (1.0 - s.requests.level) / s.requests.per_second;
      d.headers["x-ratelimit-remaining-requests"] = "0";
      d.headers["x-ratelimit-reset-requests"] = reset_text(wait);
      return refuse(wait, "principal '" + principal + "' is over its request rate limit");
    }
  }
  if (limits.tokens_per_minute > 0 && s.tokens.level <= 0.0) {
    const double wait = (1.0 - s.tokens.level) / s.tokens.per_second;
    d.headers["x-ratelimit-remaining-tokens"] = "0";
    d.headers["x-ratelimit-reset-tokens"] = reset_text(wait);
    return refuse(wait, "principal '" + principal + "' is over its tokens-per-minute limit");
  }
  if (limits.requests_per_second > 0) {
    s.requests.level -= 1.0;
    d.headers["x-ratelimit-remaining-requests"] =
        std::to_string(static_cast<int64_t>(std::floor(s.requests.level)));
    d.headers["x-ratelimit-reset-requests"] =
        reset_text((s.requests.capacity - s.requests.level) / s.requests.per_second);
  }
  if (limits.tokens_per_minute > 0) {
    d.headers["x-ratelimit-remaining-tokens"] =
        std::to_string(static_cast<int64_t>(std::max(0.0, std::floor(s.tokens.level))));
    d.headers["x-ratelimit-reset-tokens"] =
        reset_text((s.tokens.capacity - s.tokens.level) / s.tokens.per_second);
  }
  ++s.in_flight;
  ++global_in_flight_;
  d.allowed = true;
  return d;
}

void RateLimiter::release(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(principal);
  if (it != states_.end() && it->second.in_flight > 0) --it->second.in_flight;
  if (global_in_flight_ > 0) --global_in_flight_;
}

void RateLimiter::charge_tokens(const std::string& principal, int64_t tokens) {
  const double now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(principal);
  if (it == states_.end() || it->second.limits.tokens_per_minute <= 0) return;
  it->second.tokens.refill(now);
  it->second.tokens.level -= static_cast<double>(tokens);  // may go into debt
}

}  // namespace r1
