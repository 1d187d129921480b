// The response cache in Redis (through hiredis), so replicas share answers
// and a restart keeps them. Entries are `SET key value PX ttl` under a
// prefix. One connection, guarded by a mutex; every call has a short
// timeout. When Redis cannot be reached the store answers errors at once
// (the caller serves without the cache) and tries to reconnect after a
// back-off that grows to 5 s, logging once when it goes down and once when
// it is back.
#pragma once

#include <mutex>
#include <string>

#include "server/ops/cache_store.h"

struct redisContext;

namespace r1 {

struct RedisAddress {
  std::string host;  // "" for a unix socket
  int port = 6379;
  std::string socket_path;
  std::string password;  // secret: never logged
  int db = 0;
  std::string describe() const;  // for logs; without the password
};

// "redis://[:password@]host[:port][/db]" or "unix:/path/redis.sock".
Result<RedisAddress> parse_redis_address(const std::string& url);

class RedisCacheStore final : public CacheStore {
 public:
  RedisCacheStore(RedisAddress address, int timeout_ms = 200,
                  std::string prefix = "r1serve:cache:");
  ~RedisCacheStore() override;

  Result<std::optional<std::string>> get(const std::string& key) override;
  Status put(const std::string& key, const std::string& value, int64_t ttl_seconds) override;
  Status remove(const std::string& key) override;
  const char* kind() const override { return "redis"; }

 private:
  // Needs mu_. Connects if there is no connection and the back-off allows.
  Status ensure_connected();
  void drop(const std::string& why);  // needs mu_

  RedisAddress address_;
  int timeout_ms_;
  std::string prefix_;
  std::mutex mu_;  // guards everything below
  redisContext* ctx_ = nullptr;
  double retry_at_ = 0;    // steady seconds
  double backoff_ = 0.25;  // seconds, doubled per failure up to 5
  bool reported_down_ = false;
};

}  // namespace r1
