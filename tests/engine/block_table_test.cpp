#include "engine/kv_cache/block_table.h"

#include <gtest/gtest.h>

namespace r1 {
namespace {

TEST(BlockTableTest, BlocksNeeded) {
  EXPECT_EQ(blocks_needed(0, 16), 0);
  EXPECT_EQ(blocks_needed(1, 16), 1);
  EXPECT_EQ(blocks_needed(16, 16), 1);
  EXPECT_EQ(blocks_needed(17, 16), 2);
  EXPECT_EQ(blocks_needed(100, 1), 100);
  EXPECT_EQ(blocks_needed(2147483647, 16), 134217728);  // no overflow at the int32 limit
}

TEST(BlockTableTest, SlotForWalksTheBlocks) {
  BlockTable table{{7, 2, 9}, 40};
  EXPECT_EQ(slot_for(table, 0, 16), 7 * 16);
  EXPECT_EQ(slot_for(table, 15, 16), 7 * 16 + 15);
  EXPECT_EQ(slot_for(table, 16, 16), 2 * 16);
  EXPECT_EQ(slot_for(table, 33, 16), 9 * 16 + 1);
  EXPECT_EQ(slot_for(table, 47, 16), 9 * 16 + 15);  // capacity, not n_tokens, bounds it
}

TEST(BlockTableDeathTest, PositionsOutsideTheBlocksCrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockTable table{{3}, 5};
  EXPECT_DEATH(slot_for(table, 16, 16), "position");
  EXPECT_DEATH(slot_for(table, -1, 16), "position");
  EXPECT_DEATH(blocks_needed(-1, 16), "n_tokens");
}

}  // namespace
}  // namespace r1
