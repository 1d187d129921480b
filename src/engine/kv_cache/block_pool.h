// The KV block pool: every KV block of the cache, created once at start-up,
// with a reference count per block, a queue of free blocks in eviction order
// and a prefix-cache map from block hash to block (vLLM v1's BlockPool).
// A block whose count drops to 0 keeps its hash: it is free (allocate may
// take it, evicting the hash) yet reusable by acquire() until then.
// Owned by the engine thread; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/kv_cache/block_hash.h"

namespace r1 {

class BlockPool {
 public:
  static constexpr int32_t kDefaultBlockSize = 16;  // tokens per block

  // n_blocks > 0 blocks of block_size > 0 token slots each, all free, queued
  // in id order. n_blocks * block_size must fit int32 (slot ids are int32).
  explicit BlockPool(int32_t n_blocks, int32_t block_size = kDefaultBlockSize);

  // Takes n >= 0 blocks from the front of the free queue (least recently
  // freed first), each with reference count 1; a taken block that was cached
  // loses its hash (an eviction). RESOURCE_EXHAUSTED, taking nothing, when
  // fewer than n are free.
  Result<std::vector<int32_t>> allocate(int32_t n);

  // One more holder for each block (a prefix shared by another sequence).
  // Every id must be in use (count > 0): a broken invariant crashes.
  void incref(std::span<const int32_t> ids);

  // Drops one reference from each block, in the given order; a block whose
  // count reaches 0 goes to the back of the free queue. Callers free a
  // sequence's blocks last block first, so its tail is evicted first once
  // blocks are cached by prefix. Freeing a free block (a double free) or an
  // unknown id crashes.
  void free(std::span<const int32_t> ids);

  // Prefix cache. The block cached under `hash`, in use or free; nullopt
  // when none is.
  std::optional<int32_t> cached_block(const BlockHash& hash) const;

  // Registers block `id` (in use, not yet cached) under `hash`, so later
  // sequences with the same prefix can reuse it. Returns false and caches
  // nothing when another block already holds `hash` (two sequences computed
  // the same block at once): the first one stays the shared copy.
  bool cache(int32_t id, const BlockHash& hash);

  // One more holder for each block, which must be in use or cached: a cached
  // free block leaves the free queue (a prefix-cache hit). Crashes on a free
  // block that is not cached (its contents are garbage).
  void acquire(std::span<const int32_t> ids);

  std::optional<BlockHash> block_hash(int32_t id) const;
  int32_t n_cached() const { return static_cast<int32_t>(cached_.size()); }
  // Cached blocks whose hash allocate() dropped since start-up.
  int64_t n_evictions() const { return n_evictions_; }

  int32_t ref_count(int32_t id) const;
  int32_t n_free() const { return n_free_; }
  int32_t n_blocks() const { return static_cast<int32_t>(ref_count_.size()); }
  int32_t block_size() const { return block_size_; }
  // Fraction of blocks in use, in [0, 1] (the kv_cache_usage_ratio metric).
  double usage() const { return 1.0 - static_cast<double>(n_free_) / n_blocks(); }

 private:
  void check_id(int32_t id) const;
  void push_back_free(int32_t id);
  // Unlinks a free block from anywhere in the queue in O(1) (a prefix-cache
  // hit will take a cached free block from the middle).
  void remove_free(int32_t id);

  int32_t block_size_;
  std::vector<int32_t> ref_count_;  // [n_blocks]
  // The free queue, an intrusive doubly linked list over block ids:
  // prev_/next_ [n_blocks], -1 at the ends and for blocks in use.
  std::vector<int32_t> prev_;
  std::vector<int32_t> next_;
  int32_t head_ = -1;
  int32_t tail_ = -1;
  int32_t n_free_ = 0;
  // Prefix cache: hash -> block, and each block's hash ([n_blocks], nullopt
  // when uncached).
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> cached_;
  std::vector<std::optional<BlockHash>> hash_of_;
  int64_t n_evictions_ = 0;
};

}  // namespace r1
