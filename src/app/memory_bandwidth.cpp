#include "app/memory_bandwidth.h"

#include <algorithm>
#include <chrono>

#include "core/aligned_buffer.h"

namespace r1 {

double BandwidthSample::median() const {
  if (gbps.empty()) return 0.0;
  std::vector<double> v = gbps;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double BandwidthSample::best() const {
  return gbps.empty() ? 0.0 : *std::max_element(gbps.begin(), gbps.end());
}

BandwidthSample measure_triad(ThreadPool& pool, int repetitions, size_t bytes_per_array) {
  const size_t n = bytes_per_array / sizeof(float);
  AlignedBuffer<float> a(n), b(n), c(n);
  // Each thread first touches the part it will stream (page placement).
  pool.parallel_for(n, [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      b[i] = 1.0f;
      c[i] = 2.0f;
      a[i] = 0.0f;
    }
  });
  BandwidthSample out;
  const float s = 3.0f;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](size_t begin, size_t end, int) {
      float* __restrict pa = a.data();
      const float* __restrict pb = b.data();
      const float* __restrict pc = c.data();
#pragma omp simd
      for (size_t i = begin; i < end; ++i) pa[i] = pb[i] + s * pc[i];
    });
    const double sec =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.gbps.push_back(12.0 * static_cast<double>(n) / sec / 1e9);
  }
  return out;
}

}  // namespace r1
