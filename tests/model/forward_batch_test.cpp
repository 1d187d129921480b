#include "model/forward_batch.h"

#include <gtest/gtest.h>

#include <vector>

namespace r1 {
namespace {

// Two sequences: s0 has 3 tokens at positions 4..6 in blocks {5, 2}; s1 one
// token at position 0 in block {7}. Block size 4, 8 blocks.
struct Fixture {
  std::vector<int32_t> ids = {1, 2, 3, 4};
  std::vector<int32_t> pos = {4, 5, 6, 0};
  std::vector<int32_t> slots = {2 * 4 + 0, 2 * 4 + 1, 2 * 4 + 2, 7 * 4 + 0};
  std::vector<int32_t> qs = {0, 3, 4};
  std::vector<int32_t> tables = {5, 2, 7, -1};
  std::vector<int32_t> rows = {2, 3};
  BatchLimits lim{100, 64, 8, 4};
  ForwardBatch batch() const { return {ids, pos, slots, qs, tables, 2, rows}; }
};

TEST(ForwardBatchTest, AcceptsAConsistentBatch) {
  Fixture f;
  EXPECT_TRUE(validate_batch(f.batch(), f.lim).ok()) << validate_batch(f.batch(), f.lim).message();
}

TEST(ForwardBatchTest, RejectsEachInconsistency) {
  auto expect_error = [](Fixture f, const char* phrase) {
    Status s = validate_batch(f.batch(), f.lim);
    EXPECT_FALSE(s.ok()) << phrase;
    EXPECT_NE(s.message().find(phrase), std::string::npos) << s.message();
  };
  {
    Fixture f;
    f.ids[1] = 100;
    expect_error(f, "outside the vocabulary");
  }
  {
    Fixture f;
    f.ids[1] = -1;
    expect_error(f, "outside the vocabulary");
  }
  {
    Fixture f;
    f.lim.max_positions = 6;
    expect_error(f, "outside the context");
  }
  {
    Fixture f;
    f.pos[1] = 9;
    expect_error(f, "not consecutive");
  }
  {
    Fixture f;
    f.slots[0] = 5 * 4;
    expect_error(f, "disagrees with its block table");
  }
  {
    Fixture f;
    f.tables[0] = 8;
    expect_error(f, "is not a cache block");
  }
  {
    Fixture f;
    f.tables[1] = -1;
    expect_error(f, "is not a cache block");
  }
  {
    Fixture f;
    f.qs = {0, 4, 4};
    expect_error(f, "has no tokens");
  }
  {
    Fixture f;
    f.rows = {3, 2};
    expect_error(f, "ascending");
  }
  {
    Fixture f;
    f.rows = {4};
    expect_error(f, "ascending");
  }
  {
    Fixture f;
    f.slots.pop_back();
    expect_error(f, "differ in size");
  }
  {
    Fixture f;
    f.pos = {8, 9, 10, 0};
    expect_error(f, "past the block table");
  }
}

}  // namespace
}  // namespace r1
