// A sequence's KV blocks and how its token positions map to cache slots.
#pragma once

#include <cstdint>
#include <vector>

#include "core/check.h"

namespace r1 {

struct BlockTable {
  std::vector<int32_t> blocks;  // KV block ids in position order (from BlockPool)
  int32_t n_tokens = 0;         // tokens whose KV is (or is being) written
  // Leading blocks registered in (or taken from) the prefix cache; the
  // KvCacheManager's bookkeeping, 0 where prefix caching is not used.
  int32_t n_cached_blocks = 0;
};

// Blocks that hold n_tokens >= 0 tokens: ceil(n_tokens / block_size).
inline int32_t blocks_needed(int32_t n_tokens, int32_t block_size) {
  R1_CHECK(n_tokens >= 0 && block_size > 0);
  return static_cast<int32_t>((static_cast<int64_t>(n_tokens) + block_size - 1) / block_size);
}

// The cache slot (row of the [n_blocks * block_size, ...] KV layout) of the
// token at `position`: blocks[position / block_size] * block_size +
// position % block_size. The position must lie inside the table's blocks.
inline int32_t slot_for(const BlockTable& table, int32_t position, int32_t block_size) {
  R1_CHECK(block_size > 0);
  R1_CHECK(position >= 0 &&
           static_cast<int64_t>(position) < static_cast<int64_t>(table.blocks.size()) * block_size);
  const int32_t block = table.blocks[position / block_size];
  R1_CHECK(block >= 0);
  return block * block_size + position % block_size;
}

}  // namespace r1
