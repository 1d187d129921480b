#include "server/ops/response_cache.h"

#include "server/auth/api_key_store.h"

namespace r1 {

using json = nlohmann::json;

ResponseCache::ResponseCache(std::unique_ptr<CacheStore> store, int64_t ttl_seconds)
    : store_(std::move(store)), ttl_seconds_(ttl_seconds) {}

std::string ResponseCache::key_for(const std::string& model_version, const std::string& route,
                                   const json& request) {
  json canonical = request;
  if (canonical.is_object()) {
    // Delivery and attribution, not content: the same answer either way.
    for (const char* k : {"stream", "stream_options", "user"}) canonical.erase(k);
  }
  // nlohmann's object keeps keys sorted, so dump() is canonical.
  std::string material = "r1serve-response-cache-v1";
  material += '\0' + model_version + '\0' + route + '\0' + canonical.dump();
  return sha256_hex(material);
}

ResponseCache::Lookup ResponseCache::lookup(const std::string& key) {
  Lookup out;
  auto got = store_->get(key);
  if (!got.ok()) {
    out.error = true;
    return out;
  }
  if (!got->has_value()) return out;
  const json j = json::parse(**got, nullptr, false);
  // An entry that does not parse (another writer, a truncated value) is a miss.
  if (j.is_discarded() || !j.is_object() || !j.contains("body") || !j["body"].is_string()) {
    return out;
  }
  CachedAnswer a;
  a.body = j["body"].get<std::string>();
  a.prompt_tokens = j.value("prompt_tokens", int64_t{0});
  a.completion_tokens = j.value("completion_tokens", int64_t{0});
  a.reasoning_tokens = j.value("reasoning_tokens", int64_t{0});
  out.answer = std::move(a);
  return out;
}

bool ResponseCache::store(const std::string& key, const CachedAnswer& a) {
  const json j = {{"body", a.body},
                  {"prompt_tokens", a.prompt_tokens},
                  {"completion_tokens", a.completion_tokens},
                  {"reasoning_tokens", a.reasoning_tokens}};
  return store_->put(key, j.dump(), ttl_seconds_).ok();
}

}  // namespace r1
