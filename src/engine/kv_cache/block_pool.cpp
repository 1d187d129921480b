#include "engine/kv_cache/block_pool.h"

#include <limits>
#include <string>

#include "core/check.h"

namespace r1 {

BlockPool::BlockPool(int32_t n_blocks, int32_t block_size)
    : block_size_(block_size), ref_count_(n_blocks > 0 ? n_blocks : 0, 0) {
  R1_CHECK(n_blocks > 0);
  R1_CHECK(block_size > 0);
  R1_CHECK_MSG(static_cast<int64_t>(n_blocks) * block_size <= std::numeric_limits<int32_t>::max(),
               "n_blocks * block_size must fit the int32 slot ids");
  hash_of_.assign(n_blocks, std::nullopt);
  prev_.assign(n_blocks, -1);
  next_.assign(n_blocks, -1);
  for (int32_t id = 0; id < n_blocks; ++id) push_back_free(id);
}

Result<std::vector<int32_t>> BlockPool::allocate(int32_t n) {
  R1_CHECK(n >= 0);
  if (n > n_free_) {
    return resource_exhausted("need " + std::to_string(n) + " KV blocks, " +
                              std::to_string(n_free_) + " of " + std::to_string(n_blocks()) +
                              " free");
  }
  std::vector<int32_t> ids;
  ids.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = head_;
    remove_free(id);
    ref_count_[id] = 1;
    if (hash_of_[id]) {
      cached_.erase(*hash_of_[id]);
      hash_of_[id].reset();
      ++n_evictions_;
    }
    ids.push_back(id);
  }
  return ids;
}

void BlockPool::incref(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    check_id(id);
    R1_CHECK_MSG(ref_count_[id] > 0, "incref of a free KV block");
    ++ref_count_[id];
  }
}

void BlockPool::free(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    check_id(id);
    R1_CHECK_MSG(ref_count_[id] > 0, "double free of a KV block");
    if (--ref_count_[id] == 0) push_back_free(id);
  }
}

std::optional<int32_t> BlockPool::cached_block(const BlockHash& hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

bool BlockPool::cache(int32_t id, const BlockHash& hash) {
  check_id(id);
  R1_CHECK_MSG(ref_count_[id] > 0, "caching a free KV block");
  R1_CHECK_MSG(!hash_of_[id], "caching a KV block twice");
  if (!cached_.emplace(hash, id).second) return false;
  hash_of_[id] = hash;
  return true;
}

void BlockPool::acquire(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    check_id(id);
    if (ref_count_[id] == 0) {
      R1_CHECK_MSG(hash_of_[id].has_value(), "acquiring a free KV block that is not cached");
      remove_free(id);
    }
    ++ref_count_[id];
  }
}

std::optional<BlockHash> BlockPool::block_hash(int32_t id) const {
  check_id(id);
  return hash_of_[id];
}

int32_t BlockPool::ref_count(int32_t id) const {
  check_id(id);
  return ref_count_[id];
}

void BlockPool::check_id(int32_t id) const {
  R1_CHECK_MSG(id >= 0 && id < n_blocks(), "KV block id out of range");
}

void BlockPool::push_back_free(int32_t id) {
  prev_[id] = tail_;
  next_[id] = -1;
  if (tail_ >= 0) {
    next_[tail_] = id;
  } else {
    head_ = id;
  }
  tail_ = id;
  ++n_free_;
}

void BlockPool::remove_free(int32_t id) {
  const int32_t p = prev_[id];
  const int32_t n = next_[id];
  if (p >= 0) {
    next_[p] = n;
  } else {
    head_ = n;
  }
  if (n >= 0) {
    prev_[n] = p;
  } else {
    tail_ = p;
  }
  prev_[id] = -1;
  next_[id] = -1;
  --n_free_;
}

}  // namespace r1
