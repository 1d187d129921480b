#include "engine/kv_cache/kv_cache_manager.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace r1 {

KvCacheManager::KvCacheManager(int32_t n_blocks, int32_t block_size, bool enable_prefix_caching,
                               uint64_t hash_seed)
    : pool_(n_blocks, block_size),
      enable_prefix_caching_(enable_prefix_caching),
      root_(root_block_hash(hash_seed)) {}

void KvCacheManager::extend_hashes(std::span<const int32_t> tokens,
                                   std::vector<BlockHash>& hashes) const {
  const size_t bs = static_cast<size_t>(pool_.block_size());
  const size_t n_full = tokens.size() / bs;
  R1_CHECK(hashes.size() <= n_full);
  while (hashes.size() < n_full) {
    const size_t i = hashes.size();
    const BlockHash& parent = i == 0 ? root_ : hashes[i - 1];
    hashes.push_back(hash_block(parent, tokens.subspan(i * bs, bs)));
  }
}

std::vector<int32_t> KvCacheManager::find_cached_prefix(std::span<const BlockHash> hashes,
                                                        int32_t n_tokens) const {
  std::vector<int32_t> prefix;
  if (!enable_prefix_caching_ || n_tokens < 1) return prefix;
  const size_t max_blocks =
      std::min(hashes.size(), static_cast<size_t>((n_tokens - 1) / block_size()));
  for (size_t i = 0; i < max_blocks; ++i) {
    auto id = pool_.cached_block(hashes[i]);
    if (!id) break;
    prefix.push_back(*id);
  }
  return prefix;
}

int32_t KvCacheManager::n_blocks_to_take(const BlockTable& table, std::span<const int32_t> prefix,
                                         int32_t n_total) const {
  R1_CHECK(prefix.empty() || table.blocks.empty());
  int32_t n_take = 0;
  for (int32_t id : prefix) n_take += pool_.ref_count(id) == 0 ? 1 : 0;
  const int32_t have = static_cast<int32_t>(table.blocks.size() + prefix.size());
  return n_take + std::max(0, blocks_needed(n_total, block_size()) - have);
}

Status KvCacheManager::allocate(BlockTable& table, std::span<const int32_t> prefix,
                                int32_t n_total) {
  if (!can_allocate(table, prefix, n_total)) {
    return resource_exhausted("need " + std::to_string(n_blocks_to_take(table, prefix, n_total)) +
                              " KV blocks, " + std::to_string(pool_.n_free()) + " of " +
                              std::to_string(pool_.n_blocks()) + " free");
  }
  // Prefix blocks first: once acquired they are off the free queue, so the
  // fresh allocation below cannot evict them.
  pool_.acquire(prefix);
  table.blocks.insert(table.blocks.end(), prefix.begin(), prefix.end());
  if (!prefix.empty()) table.n_cached_blocks = static_cast<int32_t>(prefix.size());
  const int32_t n_new =
      blocks_needed(n_total, block_size()) - static_cast<int32_t>(table.blocks.size());
  if (n_new > 0) {
    auto fresh = pool_.allocate(n_new);
    R1_CHECK_MSG(fresh.ok(), "KV capacity check disagrees with the pool");
    table.blocks.insert(table.blocks.end(), fresh->begin(), fresh->end());
  }
  table.n_tokens = std::max(table.n_tokens, n_total);
  return ok_status();
}

void KvCacheManager::cache_full_blocks(BlockTable& table, std::span<const BlockHash> hashes,
                                       int32_t n_computed) {
  if (!enable_prefix_caching_) return;
  const size_t n_full = std::min(
      {static_cast<size_t>(n_computed / block_size()), hashes.size(), table.blocks.size()});
  for (size_t i = static_cast<size_t>(table.n_cached_blocks); i < n_full; ++i) {
    const int32_t id = table.blocks[i];
    // A block already cached under another key would mean the sequence's
    // tokens changed under its KV: a bug.
    if (auto h = pool_.block_hash(id)) {
      R1_CHECK_MSG(*h == hashes[i], "a cached KV block changed its prefix");
      continue;
    }
    pool_.cache(id, hashes[i]);  // false: an equal block is cached already
  }
  table.n_cached_blocks = std::max(table.n_cached_blocks, static_cast<int32_t>(n_full));
}

void KvCacheManager::free(BlockTable& table) {
  std::vector<int32_t> reversed(table.blocks.rbegin(), table.blocks.rend());
  pool_.free(reversed);
  table = BlockTable{};
}

}  // namespace r1
