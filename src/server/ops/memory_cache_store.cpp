#include "server/ops/memory_cache_store.h"

#include "core/clock.h"

namespace r1 {

namespace {

int64_t entry_bytes(const std::string& key, const std::string& value) {
  return static_cast<int64_t>(key.size() + value.size());
}

}  // namespace

MemoryCacheStore::MemoryCacheStore(int64_t max_bytes, Clock clock)
    : max_bytes_(max_bytes), clock_(clock ? std::move(clock) : Clock(steady_seconds)) {}

void MemoryCacheStore::erase(List::iterator it) {
  bytes_ -= entry_bytes(it->key, it->value);
  index_.erase(it->key);
  lru_.erase(it);
}

Result<std::optional<std::string>> MemoryCacheStore::get(const std::string& key) {
  const double now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::optional<std::string>();
  if (now >= it->second->expires) {
    erase(it->second);
    return std::optional<std::string>();
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return std::optional<std::string>(it->second->value);
}

Status MemoryCacheStore::put(const std::string& key, const std::string& value,
                             int64_t ttl_seconds) {
  const double now = clock_();
  const int64_t need = entry_bytes(key, value);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) erase(it->second);
  if (need > max_bytes_ || ttl_seconds <= 0) return ok_status();
  while (bytes_ + need > max_bytes_ && !lru_.empty()) erase(std::prev(lru_.end()));
  lru_.push_front(Entry{key, value, now + static_cast<double>(ttl_seconds)});
  index_[key] = lru_.begin();
  bytes_ += need;
  return ok_status();
}

int64_t MemoryCacheStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t MemoryCacheStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

Status MemoryCacheStore::remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = index_.find(key);
  if (it != index_.end()) erase(it->second);
  return ok_status();
}

}  // namespace r1
