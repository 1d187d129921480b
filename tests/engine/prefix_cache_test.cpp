// Prefix caching with no model: block keys, the pool's hash map and LRU
// eviction, the KvCacheManager, and reuse through the Scheduler.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/kv_cache/block_hash.h"
#include "engine/kv_cache/block_pool.h"
#include "engine/kv_cache/kv_cache_manager.h"
#include "engine/scheduler.h"
#include "kv_test_util.h"

namespace r1 {
namespace {

TEST(BlockHashTest, KeysNameWholePrefixes) {
  const BlockHash root = root_block_hash(0);
  const std::vector<int32_t> a = {1, 2, 3, 4};
  EXPECT_EQ(hash_block(root, a), hash_block(root, a));
  EXPECT_NE(hash_block(root, a), hash_block(root, std::vector<int32_t>{1, 2, 3, 5}));
  EXPECT_NE(hash_block(root, a), hash_block(root, std::vector<int32_t>{2, 1, 3, 4}));
  EXPECT_NE(hash_block(root, a), hash_block(root, std::vector<int32_t>{1, 2, 3}));
  // The same block after a different parent is a different key.
  const BlockHash p1 = hash_block(root, std::vector<int32_t>{9, 9, 9, 9});
  const BlockHash p2 = hash_block(root, std::vector<int32_t>{9, 9, 9, 8});
  EXPECT_NE(hash_block(p1, a), hash_block(p2, a));
  // Seeds give disjoint caches.
  EXPECT_NE(root_block_hash(0), root_block_hash(1));
  EXPECT_NE(hash_block(root_block_hash(0), a), hash_block(root_block_hash(1), a));
  // Negative ids (never valid tokens, but the hash must not fold them).
  EXPECT_NE(hash_block(root, std::vector<int32_t>{-1}), hash_block(root, std::vector<int32_t>{0}));
}

TEST(BlockHashTest, NoCollisionsAmongManyNearbyBlocks) {
  // 200k chained keys of blocks that differ in one token: each lane on its
  // own must be collision free too (a weak lane would show here first).
  std::set<uint64_t> hi, lo;
  BlockHash parent = root_block_hash(7);
  std::vector<int32_t> block = iota_ids(16, 0);
  for (int i = 0; i < 200000; ++i) {
    block[static_cast<size_t>(i % 16)] = 1000 + i;  // a value never used before
    const BlockHash h = hash_block(parent, block);
    ASSERT_TRUE(hi.insert(h.hi).second) << i;
    ASSERT_TRUE(lo.insert(h.lo).second) << i;
    if (i % 3 == 0) parent = h;
  }
}

TEST(BlockPoolPrefixTest, FreedBlocksStayCachedUntilEvicted) {
  BlockPool pool(4, 4);
  const BlockHash h0 = hash_block(root_block_hash(0), iota_ids(4, 0));
  const BlockHash h1 = hash_block(h0, iota_ids(4, 4));
  std::vector<int32_t> a = allocate_ok(pool, 2);  // blocks 0, 1
  EXPECT_TRUE(pool.cache(a[0], h0));
  EXPECT_TRUE(pool.cache(a[1], h1));
  EXPECT_EQ(pool.n_cached(), 2);
  EXPECT_EQ(pool.cached_block(h0), a[0]);
  EXPECT_EQ(pool.block_hash(a[1]), h1);

  // An equal block computed elsewhere is not cached a second time.
  std::vector<int32_t> dup = allocate_ok(pool, 1);
  EXPECT_FALSE(pool.cache(dup[0], h0));
  EXPECT_FALSE(pool.block_hash(dup[0]).has_value());
  pool.free(dup);

  // Freed tail first: the queue is now 3, 2, 1, 0 (dup = 2 went first).
  pool.free(std::vector<int32_t>{a[1], a[0]});
  EXPECT_EQ(pool.n_free(), 4);
  EXPECT_EQ(pool.cached_block(h0), a[0]);  // free, still reusable

  // A hit takes the block out of the middle of the free queue.
  pool.acquire(std::vector<int32_t>{a[0]});
  EXPECT_EQ(pool.ref_count(a[0]), 1);
  EXPECT_EQ(pool.n_free(), 3);
  // A second holder of an in-use cached block.
  pool.acquire(std::vector<int32_t>{a[0]});
  EXPECT_EQ(pool.ref_count(a[0]), 2);

  // Allocation takes the least recently freed first (3, 2), then block 1,
  // evicting its key; block 0 is held and untouched.
  EXPECT_EQ(pool.n_evictions(), 0);
  EXPECT_EQ(allocate_ok(pool, 2), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(pool.cached_block(h1), a[1]);
  EXPECT_EQ(allocate_ok(pool, 1), (std::vector<int32_t>{a[1]}));
  EXPECT_FALSE(pool.cached_block(h1).has_value());
  EXPECT_FALSE(pool.block_hash(a[1]).has_value());
  EXPECT_EQ(pool.n_evictions(), 1);
  EXPECT_EQ(pool.n_cached(), 1);
  EXPECT_EQ(pool.cached_block(h0), a[0]);
}

TEST(BlockPoolPrefixDeathTest, BrokenInvariantsCrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockPool pool(2, 4);
  const BlockHash h = hash_block(root_block_hash(0), iota_ids(4, 0));
  EXPECT_DEATH(pool.acquire(std::vector<int32_t>{0}), "not cached");
  EXPECT_DEATH(pool.cache(1, h), "caching a free KV block");
  std::vector<int32_t> a = allocate_ok(pool, 1);
  ASSERT_TRUE(pool.cache(a[0], h));
  EXPECT_DEATH(pool.cache(a[0], h), "caching a KV block twice");
}

TEST(KvCacheManagerTest, HashesExtendIncrementally) {
  KvCacheManager kv(8, 4, true);
  const std::vector<int32_t> tokens = iota_ids(11, 100);
  std::vector<BlockHash> all, step;
  kv.extend_hashes(tokens, all);
  ASSERT_EQ(all.size(), 2u);  // only full blocks
  for (size_t n = 0; n <= tokens.size(); ++n) {
    kv.extend_hashes(std::span<const int32_t>(tokens).first(n), step);
  }
  EXPECT_EQ(step, all);
  EXPECT_EQ(all[0], hash_block(root_block_hash(0), iota_ids(4, 100)));
  EXPECT_EQ(all[1], hash_block(all[0], iota_ids(4, 104)));
  // Another seed, other keys.
  KvCacheManager salted(8, 4, true, 42);
  std::vector<BlockHash> other;
  salted.extend_hashes(tokens, other);
  EXPECT_NE(other[0], all[0]);
}

TEST(KvCacheManagerTest, PrefixReuseLeavesTheLastTokenToCompute) {
  KvCacheManager kv(8, 4, true);
  const std::vector<int32_t> tokens = iota_ids(8, 0);  // two full blocks
  std::vector<BlockHash> hashes;
  kv.extend_hashes(tokens, hashes);
  EXPECT_TRUE(kv.find_cached_prefix(hashes, 8).empty());  // nothing cached yet

  BlockTable a;
  ASSERT_TRUE(kv.allocate(a, {}, 8).ok());
  EXPECT_EQ(a.blocks.size(), 2u);
  kv.cache_full_blocks(a, hashes, 7);  // only block 0 is full of computed KV
  EXPECT_EQ(a.n_cached_blocks, 1);
  EXPECT_EQ(kv.pool().n_cached(), 1);
  kv.cache_full_blocks(a, hashes, 8);
  EXPECT_EQ(a.n_cached_blocks, 2);
  EXPECT_EQ(kv.pool().n_cached(), 2);

  // The same 8 tokens again: only the first block is reused, so the last
  // token still runs through the model and yields logits.
  std::vector<int32_t> prefix = kv.find_cached_prefix(hashes, 8);
  EXPECT_EQ(prefix, (std::vector<int32_t>{a.blocks[0]}));
  // 9 tokens with the same start: both blocks.
  std::vector<int32_t> longer = tokens;
  longer.push_back(50);
  EXPECT_EQ(kv.find_cached_prefix(hashes, 9), a.blocks);

  BlockTable b;
  ASSERT_TRUE(kv.allocate(b, prefix, 8).ok());
  EXPECT_EQ(b.blocks[0], a.blocks[0]);
  EXPECT_NE(b.blocks[1], a.blocks[1]);
  EXPECT_EQ(b.n_cached_blocks, 1);
  EXPECT_EQ(kv.pool().ref_count(a.blocks[0]), 2);
  kv.cache_full_blocks(b, hashes, 8);  // b's block 1 equals a's: stays uncached
  EXPECT_FALSE(kv.pool().block_hash(b.blocks[1]).has_value());
  EXPECT_EQ(kv.pool().n_cached(), 2);

  kv.free(a);
  EXPECT_TRUE(a.blocks.empty());
  EXPECT_EQ(kv.pool().ref_count(b.blocks[0]), 1);
  kv.free(b);
  EXPECT_EQ(kv.pool().n_free(), 8);
  EXPECT_EQ(kv.pool().n_cached(), 2);  // freed, still reusable

  KvCacheManager off(8, 4, false);
  BlockTable c;
  ASSERT_TRUE(off.allocate(c, {}, 8).ok());
  off.cache_full_blocks(c, hashes, 8);
  EXPECT_EQ(off.pool().n_cached(), 0);
  EXPECT_TRUE(off.find_cached_prefix(hashes, 9).empty());
}

TEST(KvCacheManagerTest, CapacityCountsCachedFreePrefixBlocks) {
  KvCacheManager kv(3, 4, true);
  const std::vector<int32_t> tokens = iota_ids(9, 0);
  std::vector<BlockHash> hashes;
  kv.extend_hashes(tokens, hashes);
  BlockTable a;
  ASSERT_TRUE(kv.allocate(a, {}, 9).ok());  // 3 blocks: the whole cache
  kv.cache_full_blocks(a, hashes, 9);
  const std::vector<int32_t> a_blocks = a.blocks;
  kv.free(a);

  std::vector<int32_t> prefix = kv.find_cached_prefix(hashes, 9);
  ASSERT_EQ(prefix.size(), 2u);
  BlockTable b;
  // Two cached free blocks to take back plus one fresh block: 3 of 3 free.
  EXPECT_EQ(kv.n_blocks_to_take(b, prefix, 9), 3);
  EXPECT_TRUE(kv.can_allocate(b, prefix, 9));
  EXPECT_FALSE(kv.can_allocate(b, prefix, 13));
  Status st = kv.allocate(b, prefix, 13);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "need 4 KV blocks, 3 of 3 free");
  EXPECT_TRUE(b.blocks.empty());
  EXPECT_EQ(kv.pool().n_free(), 3);
  ASSERT_TRUE(kv.allocate(b, prefix, 9).ok());
  // The fresh block is the freed tail of `a` (uncached): the prefix blocks
  // were taken out of the queue first, so they cannot be evicted for it.
  EXPECT_EQ(b.blocks, a_blocks);
  EXPECT_EQ(kv.pool().n_free(), 0);
}

// ---- through the Scheduler ----

SchedulerConfig prefix_config(int32_t n_blocks) {
  SchedulerConfig c;
  c.n_blocks = n_blocks;
  c.block_size = 4;
  c.max_model_len = 64;
  c.max_batched_tokens = 64;
  c.max_seqs = 8;
  c.vocab_size = 1000;
  return c;
}

RequestSpec prompt_spec(std::string id, std::vector<int32_t> prompt, int32_t max_tokens) {
  RequestSpec s;
  s.id = std::move(id);
  s.prompt = std::move(prompt);
  s.max_tokens = max_tokens;
  return s;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Schedules one step and answers every logit row with token 999.
StepInput step_once(Scheduler& s, std::vector<RequestUpdate>* updates = nullptr) {
  StepInput in = s.schedule();
  StepOutput out;
  out.sampled.assign(in.logit_rows.size(), 999);
  auto u = s.update(in, out);
  if (updates) *updates = std::move(u);
  return in;
}

const ScheduledRequest* scheduled(const StepInput& in, const std::string& id) {
  for (const auto& r : in.requests) {
    if (r.request_id == id) return &r;
  }
  return nullptr;
}

TEST(SchedulerPrefixTest, SecondRequestComputesOnlyWhatIsNotCached) {
  Scheduler s(prefix_config(16));
  const std::vector<int32_t> shared = iota_ids(8, 10);  // two full blocks
  ASSERT_TRUE(s.add_request(prompt_spec("a", concat(shared, {1, 2}), 4)).ok());
  StepInput first = step_once(s);
  ASSERT_EQ(first.requests.size(), 1u);
  EXPECT_EQ(first.requests[0].n_new_tokens, 10);
  EXPECT_EQ(s.kv_cache().pool().n_cached(), 2);  // blocks cached once computed

  ASSERT_TRUE(s.add_request(prompt_spec("b", concat(shared, {3, 4, 5}), 4)).ok());
  std::vector<RequestUpdate> updates;
  StepInput second = step_once(s, &updates);
  const ScheduledRequest* b = scheduled(second, "b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->first_position, 8);
  EXPECT_EQ(b->n_new_tokens, 3);
  EXPECT_TRUE(b->sample);
  const Request* ra = s.find("a");
  const Request* rb = s.find("b");
  ASSERT_NE(ra, nullptr);
  ASSERT_NE(rb, nullptr);
  EXPECT_EQ(rb->table.blocks[0], ra->table.blocks[0]);
  EXPECT_EQ(rb->table.blocks[1], ra->table.blocks[1]);
  EXPECT_NE(rb->table.blocks[2], ra->table.blocks[2]);
  EXPECT_EQ(s.kv_cache().pool().ref_count(ra->table.blocks[0]), 2);
  EXPECT_EQ(s.kv_cache().pool().ref_count(ra->table.blocks[2]), 1);
  EXPECT_EQ(rb->n_cached_prompt_tokens, 8);
  for (const auto& u : updates) {
    if (u.request_id == "b") {
      EXPECT_EQ(u.n_cached_prompt_tokens, 8);
    }
  }
  SchedulerStats st = s.stats();
  EXPECT_EQ(st.prefix_cache_queries, 10 + 11);
  EXPECT_EQ(st.prefix_cache_hits, 8);
  // The rows of the shared blocks point at the same slots for both.
  ForwardBatch fb = second.forward_batch();
  EXPECT_TRUE(validate_batch(fb, {1000, 64, 16, 4}).ok());

  while (s.has_unfinished()) step_once(s);
  EXPECT_EQ(s.stats().n_free_blocks, 16);
}

TEST(SchedulerPrefixTest, FinishedRequestsLeaveReusableBlocks) {
  Scheduler s(prefix_config(16));
  const std::vector<int32_t> prompt = iota_ids(8, 10);
  ASSERT_TRUE(s.add_request(prompt_spec("a", prompt, 1)).ok());
  step_once(s);  // prompt computed, one token sampled, finished
  ASSERT_FALSE(s.has_unfinished());
  EXPECT_EQ(s.stats().n_free_blocks, 16);
  EXPECT_EQ(s.kv_cache().pool().n_cached(), 2);

  // Identical prompt: the last block is recomputed for its logits.
  ASSERT_TRUE(s.add_request(prompt_spec("b", prompt, 1)).ok());
  StepInput in = step_once(s);
  ASSERT_EQ(in.requests.size(), 1u);
  EXPECT_EQ(in.requests[0].first_position, 4);
  EXPECT_EQ(in.requests[0].n_new_tokens, 4);
  EXPECT_EQ(s.stats().prefix_cache_hits, 4);
  EXPECT_EQ(s.stats().prefix_cache_queries, 16);

  // Prefix caching off: nothing is reused or counted.
  SchedulerConfig off = prefix_config(16);
  off.enable_prefix_caching = false;
  Scheduler s2(off);
  ASSERT_TRUE(s2.add_request(prompt_spec("a", prompt, 1)).ok());
  step_once(s2);
  ASSERT_TRUE(s2.add_request(prompt_spec("b", prompt, 1)).ok());
  StepInput in2 = step_once(s2);
  EXPECT_EQ(in2.requests[0].first_position, 0);
  EXPECT_EQ(s2.stats().prefix_cache_queries, 0);
  EXPECT_EQ(s2.kv_cache().pool().n_cached(), 0);
}

TEST(SchedulerPrefixTest, CachedFreeBlocksAreEvictedLeastRecentlyFreedFirst) {
  // 6 blocks of 4. Each prompt has 9 tokens: 2 full blocks + 1 partial.
  Scheduler s(prefix_config(6));
  const std::vector<int32_t> pa = iota_ids(9, 100), pb = iota_ids(9, 200);
  ASSERT_TRUE(s.add_request(prompt_spec("a", pa, 1)).ok());
  step_once(s);
  ASSERT_TRUE(s.add_request(prompt_spec("b", pb, 1)).ok());
  step_once(s);
  // Both finished; a's blocks were freed before b's, tail first.
  EXPECT_EQ(s.kv_cache().pool().n_cached(), 4);
  EXPECT_EQ(s.stats().n_free_blocks, 6);

  // A request was freed tail first: a 1-block request takes a's partial
  // block, evicting nothing (head first would have cut a's whole chain).
  ASSERT_TRUE(s.add_request(prompt_spec("d", iota_ids(3, 400), 1)).ok());
  step_once(s);
  EXPECT_EQ(s.kv_cache().pool().n_evictions(), 0);

  // A new 9-token prompt takes 3 blocks: the free queue starts with a's two
  // cached blocks, then b's; so a's are evicted.
  ASSERT_TRUE(s.add_request(prompt_spec("c", iota_ids(9, 300), 1)).ok());
  step_once(s);
  EXPECT_EQ(s.kv_cache().pool().n_evictions(), 2);

  ASSERT_TRUE(s.add_request(prompt_spec("b2", pb, 1)).ok());
  StepInput in_b = step_once(s);
  EXPECT_EQ(in_b.requests[0].first_position, 8);  // b's blocks survived
  ASSERT_TRUE(s.add_request(prompt_spec("a2", pa, 1)).ok());
  StepInput in_a = step_once(s);
  EXPECT_EQ(in_a.requests[0].first_position, 0);  // a's were evicted
  EXPECT_EQ(s.stats().n_free_blocks, 6);
}

}  // namespace
}  // namespace r1
