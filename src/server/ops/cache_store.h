// Where the response cache and the generation checkpoints keep their
// entries: in this process (MemoryCacheStore), in Redis (RedisCacheStore) or
// in a directory (DirectoryStore), the last two shared by replicas. Keys are
// hex SHA-256 digests; values are opaque bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace r1 {

class CacheStore {
 public:
  virtual ~CacheStore() = default;
  // The value, nullopt on a miss, or an error when the store cannot answer
  // (the caller serves without the cache).
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  // Stores `value` for `ttl_seconds` (> 0).
  virtual Status put(const std::string& key, const std::string& value, int64_t ttl_seconds) = 0;
  // Drops the entry; absent is fine.
  virtual Status remove(const std::string& key) = 0;
  // "memory", "redis" or "directory": for logs and metrics.
  virtual const char* kind() const = 0;
};

}  // namespace r1
