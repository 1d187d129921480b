// The KV cache as sequences see it (vLLM v1's KVCacheManager): grows a
// sequence's BlockTable, reusing cached prefix blocks, registers its full
// blocks in the prefix cache once their KV is computed, and frees it. Owns the
// BlockPool. A sequence's block keys (BlockHash per full block of its tokens)
// live with the sequence; extend_hashes() keeps them up to date.
// Owned by the engine thread; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "engine/kv_cache/block_hash.h"
#include "engine/kv_cache/block_pool.h"
#include "engine/kv_cache/block_table.h"

namespace r1 {

class KvCacheManager {
 public:
  // n_blocks of block_size tokens (BlockPool's preconditions). With
  // prefix caching off nothing is looked up or cached. `hash_seed` salts
  // every key (root_block_hash).
  KvCacheManager(int32_t n_blocks, int32_t block_size, bool enable_prefix_caching,
                 uint64_t hash_seed = 0);

  // Appends to `hashes` the keys of the full blocks of `tokens` it does not
  // cover yet, so that hashes[i] names tokens [0, (i + 1) * block_size).
  void extend_hashes(std::span<const int32_t> tokens, std::vector<BlockHash>& hashes) const;

  // The longest run of leading blocks of a sequence of n_tokens tokens (full
  // block keys `hashes`) that the cache holds, at most (n_tokens - 1) /
  // block_size blocks: the last token is always computed, to give logits.
  // Empty when prefix caching is off. Takes nothing: pass it to allocate().
  std::vector<int32_t> find_cached_prefix(std::span<const BlockHash> hashes,
                                          int32_t n_tokens) const;

  // Capacity check: blocks that growing `table` to n_total tokens would take
  // off the free queue, `prefix` (only for an empty table) included: its
  // cached free blocks plus the fresh blocks past it.
  int32_t n_blocks_to_take(const BlockTable& table, std::span<const int32_t> prefix,
                           int32_t n_total) const;
  bool can_allocate(const BlockTable& table, std::span<const int32_t> prefix,
                    int32_t n_total) const {
    return n_blocks_to_take(table, prefix, n_total) <= pool_.n_free();
  }

  // Grows `table` to hold n_total tokens: first the `prefix` blocks (from
  // find_cached_prefix; `table` must then be empty), acquired, then fresh
  // blocks. RESOURCE_EXHAUSTED, changing nothing, when they do not fit.
  Status allocate(BlockTable& table, std::span<const int32_t> prefix, int32_t n_total);

  // Registers in the prefix cache the table's blocks that are full of
  // computed KV (the first n_computed tokens) and have a key in `hashes`.
  void cache_full_blocks(BlockTable& table, std::span<const BlockHash> hashes, int32_t n_computed);

  // Returns the table's blocks, last block first (its tail is evicted
  // first), and empties it.
  void free(BlockTable& table);

  bool prefix_caching() const { return enable_prefix_caching_; }
  int32_t block_size() const { return pool_.block_size(); }
  const BlockPool& pool() const { return pool_; }

 private:
  BlockPool pool_;
  bool enable_prefix_caching_;
  BlockHash root_;
};

}  // namespace r1
