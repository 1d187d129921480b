#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace r1 {
namespace {

TEST(ThreadPoolTest, RangesCoverEveryItemExactlyOnce) {
  ThreadPool pool(4);
  for (size_t n : {1u, 3u, 4u, 5u, 17u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, ManyConsecutiveJobsAndThreadIndices) {
  ThreadPool pool(3);
  std::atomic<long> sum{0};
  for (int round = 0; round < 2000; ++round) {
    pool.parallel_for(10, [&](size_t b, size_t e, int t) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, 3);
      for (size_t i = b; i < e; ++i) sum.fetch_add(static_cast<long>(i));
    });
  }
  EXPECT_EQ(sum.load(), 2000L * 45);
}

TEST(ThreadPoolTest, MinPerThreadLimitsParts) {
  ThreadPool pool(4);
  std::atomic<int> calls{0};
  pool.parallel_for(
      10, [&](size_t, size_t, int) { calls.fetch_add(1); }, 8);
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace r1

namespace r1 {
namespace {

// Back-to-back jobs of varying width (some leave workers idle) with the
// workers sometimes asleep and sometimes spinning: every item runs exactly
// once per job, never twice, never skipped.
TEST(ThreadPoolTest, BackToBackJobsOfVaryingWidthRunEachItemOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(16);
  for (int job = 0; job < 6000; ++job) {
    const size_t n = 1 + static_cast<size_t>(job * 7 % 16);
    for (auto& h : hits) h.store(0);
    pool.parallel_for(
        n,
        [&](size_t b, size_t e, int) {
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        },
        1 + static_cast<size_t>(job % 5));
    for (size_t i = 0; i < hits.size(); ++i) {
      ASSERT_EQ(hits[i].load(), i < n ? 1 : 0) << "job " << job << " item " << i;
    }
    if (job % 2000 == 1999) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace
}  // namespace r1
