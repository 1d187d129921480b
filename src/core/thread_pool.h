// A persistent pool of worker threads with static partitioning: the caller's
// thread takes part, work is split into equal contiguous ranges, and
// parallel_for returns when every range is done. Not reentrant: one
// parallel_for at a time per pool (the engine thread owns its pool).
//
// Hand-off is a spin-then-sleep barrier: a forward pass issues hundreds of
// parallel_for calls per token microseconds apart, and a condition-variable
// wake-up costs tens of microseconds each, so workers (and the caller,
// waiting for them) spin on an atomic for a short while before sleeping.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace r1 {

// A non-owning reference to a callable (begin, end, thread) -> void. Unlike
// std::function it never allocates, so handing a capturing lambda to the
// pool costs nothing in the step. The callable must outlive the call.
class RangeFn {
 public:
  template <typename F>
  RangeFn(const F& f)  // NOLINT: implicit, so callers pass lambdas directly
      : obj_(&f), call_([](const void* o, size_t b, size_t e, int t) {
          (*static_cast<const F*>(o))(b, e, t);
        }) {}
  void operator()(size_t b, size_t e, int t) const { call_(obj_, b, e, t); }

 private:
  const void* obj_;
  void (*call_)(const void*, size_t, size_t, int);
};

class ThreadPool {
 public:
  // n_threads counts the calling thread; 0 means hardware concurrency.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint ranges covering [0, n).
  // Ranges are contiguous and their sizes differ by at most one; empty ranges
  // are skipped. Work smaller than `min_per_thread` per thread runs on fewer
  // threads.
  void parallel_for(size_t n, RangeFn fn, size_t min_per_thread = 1);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The job fields are written by the caller before it publishes a new
  // generation_ (release) and read by workers after they see it (acquire).
  const RangeFn* job_ = nullptr;
  size_t job_n_ = 0;
  int job_parts_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers still running the current job
  std::atomic<bool> stop_{false};
  // Sleepers: mu_ orders the last checks before sleeping with the
  // notifications, so no wake-up is lost.
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
};

}  // namespace r1
