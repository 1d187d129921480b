// An in-process LRU with a per-entry expiry and a byte cap (keys plus
// values). A put that would pass the cap evicts least-recently-used entries
// first; a value larger than the cap is not stored. Thread-safe.
#pragma once

#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>

#include "server/ops/cache_store.h"

namespace r1 {

class MemoryCacheStore final : public CacheStore {
 public:
  using Clock = std::function<double()>;  // monotonic seconds

  explicit MemoryCacheStore(int64_t max_bytes, Clock clock = nullptr);

  Result<std::optional<std::string>> get(const std::string& key) override;
  Status put(const std::string& key, const std::string& value, int64_t ttl_seconds) override;
  Status remove(const std::string& key) override;
  const char* kind() const override { return "memory"; }

  int64_t bytes() const;
  size_t size() const;

 private:
  struct Entry {
    std::string key, value;
    double expires = 0;
  };
  using List = std::list<Entry>;  // most recently used first
  void erase(List::iterator it);  // needs mu_

  int64_t max_bytes_;
  Clock clock_;
  mutable std::mutex mu_;  // guards everything below
  List lru_;
  std::unordered_map<std::string, List::iterator> index_;
  int64_t bytes_ = 0;
};

}  // namespace r1
