#pragma once

// Helpers that several engine_test files use. Defined once here: the
// sanitizer presets compile a target's files as one unity translation unit,
// where two files' helpers of the same name would clash.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "engine/kv_cache/block_pool.h"

namespace r1 {

// n ids counting up from start.
inline std::vector<int32_t> iota_ids(int32_t n, int32_t start) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// n blocks from the pool, failing the test (and returning none) if it refuses.
inline std::vector<int32_t> allocate_ok(BlockPool& pool, int32_t n) {
  auto r = pool.allocate(n);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::vector<int32_t>{};
}

}  // namespace r1
