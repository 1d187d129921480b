// Loading model versions for `serve`: from a registry (or one folder as a
// registry of one), verified against their manifests, with the memory they
// need checked before anything is allocated, each with its own backend,
// KV cache and engine. The result is a ServedModel whose `owner` keeps all
// of that alive; the version unloads when the last holder lets go.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "app/cli_util.h"
#include "core/status.h"
#include "engine/engine.h"
#include "registry/manifest.h"
#include "registry/model_registry.h"
#include "server/served_model.h"

namespace r1 {

// What `serve` loads every version with.
struct VersionSettings {
  int threads = 0;
  int64_t kv_cache_bytes = 0;  // 0: kv_cache_fraction of available memory, per version
  double kv_cache_fraction = 0.25;
  int64_t max_model_len = 0;
  int32_t max_reasoning_tokens = -1;
  bool special_tokens_in_messages = false;
  VerifyMode verify = VerifyMode::kAuto;
  LoadOptions load;  // precision and device; kv tokens are set per version
  EngineOptions engine;
};

class VersionLoader {
 public:
  VersionLoader(ModelRegistry registry, bool from_registry, VersionSettings settings);

  // Reads the registry again from its source (SIGHUP); on error the old
  // one stays.
  Status reload_registry();
  // The version number `ref` (a number or an alias) names.
  Result<std::string> resolve(const std::string& model, const std::string& ref) const;
  // The version a bare model name follows now (its default alias, else
  // the latest).
  Result<std::string> default_version(const std::string& model) const;
  std::vector<std::string> model_names() const;
  bool from_registry() const { return from_registry_; }

  // Loads a version: verification, memory check, backend, engine. Not
  // warmed up.
  Result<std::shared_ptr<ServedModel>> load(const std::string& model,
                                            const std::string& version) const;
  // One token through the version's engine, so its first request does not
  // pay for lazy set-up.
  static void warm_up(const ServedModel& m);

 private:
  mutable std::mutex mu_;  // guards registry_ (SIGHUP replaces it)
  ModelRegistry registry_;
  bool from_registry_;
  VersionSettings s_;
};

// The name a folder or GGUF file is served as when no registry names it:
// the folder's name, or the file's stem without its split suffix.
std::string folder_model_name(const std::string& path);

}  // namespace r1
