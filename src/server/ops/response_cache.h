// Exact-match cache of whole responses for deterministic requests
// (temperature 0 or an explicit seed). The key is the SHA-256 of the model
// version, the route and the request body in canonical form (keys sorted,
// whitespace gone, fields that cannot change the answer dropped), so two
// spellings of the same request share an entry and a new model version
// never sees an old answer. The entry keeps the response body and its token
// counts, so a hit can be charged to the caller like the original.
// A store that fails is reported, never fatal: the request runs uncached.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/ops/cache_store.h"

namespace r1 {

struct CachedAnswer {
  std::string body;  // the JSON response as first sent
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t reasoning_tokens = 0;
};

class ResponseCache {
 public:
  ResponseCache(std::unique_ptr<CacheStore> store, int64_t ttl_seconds);

  // The key for `request` (a parsed JSON body) on `route` of a model version.
  static std::string key_for(const std::string& model_version, const std::string& route,
                             const nlohmann::json& request);

  struct Lookup {
    std::optional<CachedAnswer> answer;
    bool error = false;  // the store could not answer
  };
  Lookup lookup(const std::string& key);
  // Returns false when the store failed.
  bool store(const std::string& key, const CachedAnswer& answer);

  const char* kind() const { return store_->kind(); }
  int64_t ttl_seconds() const { return ttl_seconds_; }

 private:
  std::unique_ptr<CacheStore> store_;
  int64_t ttl_seconds_;
};

}  // namespace r1
