#include "engine/kv_cache/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "kv_test_util.h"

namespace r1 {
namespace {

TEST(BlockPoolTest, AllocateAndFree) {
  BlockPool pool(8);
  EXPECT_EQ(pool.block_size(), 16);
  EXPECT_EQ(pool.n_blocks(), 8);
  EXPECT_EQ(pool.n_free(), 8);
  EXPECT_EQ(pool.usage(), 0.0);
  EXPECT_TRUE(allocate_ok(pool, 0).empty());

  std::vector<int32_t> a = allocate_ok(pool, 3);
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2}));  // a fresh pool hands out ids in order
  std::vector<int32_t> b = allocate_ok(pool, 5);
  EXPECT_EQ(b, (std::vector<int32_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(pool.usage(), 1.0);
  for (int32_t id : a) EXPECT_EQ(pool.ref_count(id), 1);

  pool.free(a);
  EXPECT_EQ(pool.n_free(), 3);
  for (int32_t id : a) EXPECT_EQ(pool.ref_count(id), 0);
  EXPECT_DOUBLE_EQ(pool.usage(), 5.0 / 8.0);
}

TEST(BlockPoolTest, ExhaustionTakesNothing) {
  BlockPool pool(4, 32);
  std::vector<int32_t> a = allocate_ok(pool, 3);
  auto r = pool.allocate(2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "need 2 KV blocks, 1 of 4 free");
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(allocate_ok(pool, 1), (std::vector<int32_t>{3}));
  EXPECT_FALSE(pool.allocate(1).ok());
}

TEST(BlockPoolTest, FreedBlocksQueueInEvictionOrder) {
  BlockPool pool(6);
  std::vector<int32_t> all = allocate_ok(pool, 6);
  // Freed tail first: 5, 4, then 1; the next allocation takes them in that order.
  pool.free(std::vector<int32_t>{5, 4});
  pool.free(std::vector<int32_t>{1});
  EXPECT_EQ(allocate_ok(pool, 2), (std::vector<int32_t>{5, 4}));
  pool.free(std::vector<int32_t>{0});
  EXPECT_EQ(allocate_ok(pool, 2), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(pool.n_free(), 0);
}

TEST(BlockPoolTest, SharedBlocksAreFreedByTheLastHolder) {
  BlockPool pool(4);
  std::vector<int32_t> prefix = allocate_ok(pool, 2);
  pool.incref(prefix);  // a second sequence shares the prefix
  EXPECT_EQ(pool.ref_count(prefix[0]), 2);
  pool.free(prefix);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.ref_count(prefix[1]), 1);
  pool.free(prefix);
  EXPECT_EQ(pool.n_free(), 4);
  // The same id twice in one call drops two references.
  std::vector<int32_t> one = allocate_ok(pool, 1);
  pool.incref(one);
  pool.free(std::vector<int32_t>{one[0], one[0]});
  EXPECT_EQ(pool.ref_count(one[0]), 0);
  EXPECT_EQ(pool.n_free(), 4);
}

// Random allocate / share / free against a plain model of reference counts.
TEST(BlockPoolTest, RandomOperationsMatchAModel) {
  constexpr int32_t kBlocks = 64;
  BlockPool pool(kBlocks, 8);
  std::map<int32_t, int> model;               // id -> reference count, in use only
  std::vector<std::vector<int32_t>> holders;  // each holder owns one reference per id
  std::mt19937 gen(17);
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(gen() % 3);
    if (op == 0) {
      const int32_t n = static_cast<int32_t>(gen() % 9);
      const int32_t free_before = kBlocks - static_cast<int32_t>(model.size());
      auto r = pool.allocate(n);
      ASSERT_EQ(r.ok(), n <= free_before) << step;
      if (!r.ok()) continue;
      std::set<int32_t> distinct(r->begin(), r->end());
      ASSERT_EQ(distinct.size(), r->size());
      for (int32_t id : *r) {
        ASSERT_TRUE(id >= 0 && id < kBlocks);
        ASSERT_EQ(model.count(id), 0u) << "block " << id << " handed out while in use";
        model[id] = 1;
      }
      holders.push_back(*r);
    } else if (op == 1 && !holders.empty()) {
      std::vector<int32_t> shared = holders[gen() % holders.size()];
      pool.incref(shared);
      for (int32_t id : shared) model[id]++;
      holders.push_back(shared);
    } else if (!holders.empty()) {
      size_t h = gen() % holders.size();
      std::vector<int32_t> ids = holders[h];
      std::reverse(ids.begin(), ids.end());
      pool.free(ids);
      for (int32_t id : ids) {
        if (--model[id] == 0) model.erase(id);
      }
      holders.erase(holders.begin() + static_cast<std::ptrdiff_t>(h));
    }
    ASSERT_EQ(pool.n_free(), kBlocks - static_cast<int32_t>(model.size())) << step;
  }
  for (int32_t id = 0; id < kBlocks; ++id) {
    EXPECT_EQ(pool.ref_count(id), model.count(id) ? model[id] : 0) << id;
  }
}

TEST(BlockPoolDeathTest, BrokenInvariantsCrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockPool pool(4);
  std::vector<int32_t> a = allocate_ok(pool, 1);
  pool.free(a);
  EXPECT_DEATH(pool.free(a), "double free of a KV block");
  EXPECT_DEATH(pool.incref(std::vector<int32_t>{2}), "incref of a free KV block");
  EXPECT_DEATH(pool.free(std::vector<int32_t>{4}), "KV block id out of range");
  EXPECT_DEATH(pool.ref_count(-1), "KV block id out of range");
  EXPECT_DEATH(BlockPool(0), "n_blocks > 0");
  EXPECT_DEATH(BlockPool(1 << 20, 1 << 12), "must fit the int32 slot ids");
}

}  // namespace
}  // namespace r1
