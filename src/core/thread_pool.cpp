#include "core/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace r1 {

namespace {
// Range [begin, end) of part `i` when n items are split into `parts`.
void part_range(size_t n, int parts, int i, size_t* begin, size_t* end) {
  size_t base = n / static_cast<size_t>(parts);
  size_t extra = n % static_cast<size_t>(parts);
  size_t ui = static_cast<size_t>(i);
  *begin = ui * base + std::min(ui, extra);
  *end = *begin + base + (ui < extra ? 1 : 0);
}

// Spins until done() or about kSpin has passed; true when done() became true.
// 200 us covers the gap between the kernels of one forward pass; an idle
// engine's workers then sleep.
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() > deadline) return done();
    // With more threads than free cores a spinner would hold the core the
    // thread it waits for needs.
    std::this_thread::yield();
  }
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(size_t n, RangeFn fn, size_t min_per_thread) {
  if (n == 0) return;
  size_t by_size = std::max<size_t>(1, n / std::max<size_t>(1, min_per_thread));
  int parts = static_cast<int>(std::min<size_t>(static_cast<size_t>(n_threads_), by_size));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  // Every worker checks in, even one with no range this time: the job fields
  // are only rewritten once no worker can still be reading them.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  size_t b, e;
  part_range(n, parts, 0, &b, &e);
  fn(b, e, 0);
  auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, all_done);
  }
  job_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto woken = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(woken)) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, woken);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    const int parts = job_parts_;
    if (index < parts) {
      size_t b, e;
      part_range(job_n_, parts, index, &b, &e);
      (*job_)(b, e, index);
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace r1
