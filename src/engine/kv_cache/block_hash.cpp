#include "engine/kv_cache/block_hash.h"

namespace r1 {

namespace {

// splitmix64's finaliser: a bijection on 64 bits with full avalanche.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

// Two lanes fed the same words through different steps, so that a structure
// that collides one lane does not carry over to the other.
struct Lanes {
  uint64_t a;
  uint64_t b;
  void add(uint64_t w) {
    a = mix64(a ^ w);
    b = mix64(rotl(b, 23) + w * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
  }
};

}  // namespace

BlockHash root_block_hash(uint64_t seed) {
  Lanes l{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
  l.add(seed);
  return {l.a, l.b};
}

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens) {
  Lanes l{0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL};
  l.add(parent.hi);
  l.add(parent.lo);
  l.add(tokens.size());
  for (int32_t t : tokens) l.add(static_cast<uint32_t>(t));
  return {l.a, l.b};
}

}  // namespace r1
