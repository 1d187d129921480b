// RateLimiter on a controlled clock: request rate, tokens per minute
// (charged after the fact), concurrency, the global cap, one principal at
// its limit leaving another untouched, and the OpenAI-style headers.
#include "server/auth/rate_limiter.h"

#include <gtest/gtest.h>

namespace r1 {
namespace {

struct FakeClock {
  double now = 1000.0;
  RateLimiter::Clock fn() {
    return [this] { return now; };
  }
};

PrincipalLimits limits(double rps, int64_t tpm = 0, int32_t conc = 0) {
  PrincipalLimits l;
  l.requests_per_second = rps;
  l.tokens_per_minute = tpm;
  l.max_concurrent = conc;
  return l;
}

TEST(RateLimiterTest, RequestRateRefillsWithTime) {
  FakeClock c;
  RateLimiter rl(0, c.fn());
  const PrincipalLimits l = limits(2);
  for (int i = 0; i < 2; ++i) {
    auto d = rl.admit("a", l);
    ASSERT_TRUE(d.allowed) << i;
    rl.release("a");
  }
  auto refused = rl.admit("a", l);
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1);
  EXPECT_EQ(refused.headers.at("Retry-After"), "1");
  EXPECT_EQ(refused.headers.at("x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(refused.headers.at("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(refused.headers.at("x-ratelimit-reset-requests"), "500ms");
  // Another principal is not affected.
  EXPECT_TRUE(rl.admit("b", l).allowed);
  c.now += 0.5;  // one request's worth
  auto again = rl.admit("a", l);
  EXPECT_TRUE(again.allowed);
  EXPECT_EQ(again.headers.at("x-ratelimit-remaining-requests"), "0");
  EXPECT_FALSE(rl.admit("a", l).allowed);
}

TEST(RateLimiterTest, TokensPerMinuteRefusesWhileInDebt) {
  FakeClock c;
  RateLimiter rl(0, c.fn());
  const PrincipalLimits l = limits(0, 600);  // 10 tokens per second
  ASSERT_TRUE(rl.admit("a", l).allowed);
  rl.charge_tokens("a", 650);  // 50 over
  rl.release("a");
  auto d = rl.admit("a", l);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.headers.at("x-ratelimit-limit-tokens"), "600");
  EXPECT_EQ(d.headers.at("x-ratelimit-remaining-tokens"), "0");
  EXPECT_EQ(d.retry_after_seconds, 6);  // (50 + 1) / 10 per second, rounded up
  c.now += 6.0;
  auto ok = rl.admit("a", l);
  ASSERT_TRUE(ok.allowed);
  EXPECT_EQ(ok.headers.at("x-ratelimit-remaining-tokens"), "10");
}

TEST(RateLimiterTest, ConcurrencyPerPrincipalAndGlobal) {
  FakeClock c;
  RateLimiter rl(3, c.fn());
  const PrincipalLimits l = limits(0, 0, 2);
  ASSERT_TRUE(rl.admit("a", l).allowed);
  ASSERT_TRUE(rl.admit("a", l).allowed);
  EXPECT_FALSE(rl.admit("a", l).allowed);  // its own cap
  ASSERT_TRUE(rl.admit("b", l).allowed);
  EXPECT_FALSE(rl.admit("b", l).allowed);  // the global cap of 3
  rl.release("a");
  EXPECT_TRUE(rl.admit("b", l).allowed);
  rl.release("b");
  rl.release("b");
  EXPECT_TRUE(rl.admit("a", l).allowed);
}

TEST(RateLimiterTest, UnlimitedPrincipalsAreOnlyCounted) {
  FakeClock c;
  RateLimiter rl(0, c.fn());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.admit("free", PrincipalLimits{}).allowed);
}

}  // namespace
}  // namespace r1
