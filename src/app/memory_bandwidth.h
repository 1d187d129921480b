// A STREAM-style triad (a[i] = b[i] + s * c[i] over f32 arrays far larger
// than the last-level cache), run on the same thread pool and thread count as
// the engine, so "decode tokens/s as a fraction of the bandwidth bound" is
// measured against what this machine delivers right now.
#pragma once

#include <cstddef>
#include <vector>

#include "core/thread_pool.h"

namespace r1 {

struct BandwidthSample {
  std::vector<double> gbps;  // one per repetition, 10^9 bytes/s
  double median() const;
  double best() const;
};

// Bytes counted per element: 12 (read b, read c, write a), as STREAM counts
// them. `bytes_per_array` 128 MiB by default (4x a 32 MiB L3).
BandwidthSample measure_triad(ThreadPool& pool, int repetitions,
                              size_t bytes_per_array = size_t{128} << 20);

}  // namespace r1
