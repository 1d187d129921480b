#include "obs/request_id.h"

#include <cstdint>
#include <random>

namespace r1 {

namespace {

// One generator per thread: no lock on the request path. 256 bits of seed
// from std::random_device (getrandom on Linux) per thread make collisions
// between threads as unlikely as within one.
std::mt19937_64& thread_generator() {
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return gen;
}

}  // namespace

std::string new_request_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::mt19937_64& gen = thread_generator();
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = gen();
    for (int i = 0; i < 16; ++i) {
      id[size_t(half * 16 + i)] = kHex[bits & 0xF];
      bits >>= 4;
    }
  }
  return id;
}

bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  if (id.front() == ' ' || id.back() == ' ') return false;
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7E) return false;
  }
  return true;
}

std::string request_id_or_new(std::string_view client_id) {
  if (is_valid_request_id(client_id)) return std::string(client_id);
  return new_request_id();
}

}  // namespace r1
