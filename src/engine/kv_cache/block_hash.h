// Prefix-cache keys (vLLM v1's block hashes): a full block of tokens is named
// by the hash of its parent block's key and its own token ids, so equal keys
// mean equal whole prefixes, not just equal blocks.
//
// Collision stance: the hash is a non-cryptographic 128-bit one (two
// differently seeded 64-bit lanes of splitmix64 mixing). For accidental
// collisions that is ample: with 10^12 distinct blocks ever cached the chance
// of any collision is about 10^24 / 2^129, i.e. never. It is not a defence
// against a client crafting a collision to read another request's cached KV
// state (vLLM offers SHA-256 for that); a secret per-process seed
// (root_block_hash) makes such crafting harder but proves nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace r1 {

struct BlockHash {
  uint64_t hi = 0;
  uint64_t lo = 0;
  friend bool operator==(const BlockHash&, const BlockHash&) = default;
};

// For unordered containers: the low lane is already well mixed.
struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.lo); }
};

// The parent key of a sequence's first block. Different seeds give disjoint
// caches (a per-model or per-process salt).
BlockHash root_block_hash(uint64_t seed);

// The key of the block holding `tokens`, whose preceding block has key `parent`
// (root_block_hash for the first block).
BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens);

}  // namespace r1
