// The model versions a server has loaded, and which one each request gets.
//
// Per model name: the loaded versions (each a ServedModel), the active one,
// and optionally a canary that takes `percent` of the requests naming the
// model (sticky per `user` when the request gives one). A request may also
// name one loaded version (NAME@VERSION, or NAME@ALIAS for a registry
// alias that names it). A version taken out of the table stays alive for
// the requests still holding it, and is unloaded after the last.
//
// Thread-safe: requests route under a shared lock; changes take it
// exclusively and are serialised by the caller (one swap at a time).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/served_model.h"

namespace r1 {

class ModelTable {
 public:
  using Version = std::shared_ptr<const ServedModel>;

  struct ModelView {
    std::string name;
    Version active;
    Version canary;  // null without a canary
    int canary_percent = 0;
    std::string previous;         // the version active before the last activation
    std::vector<Version> loaded;  // every loaded version, by version
  };

  // Adds a loaded version (one a model does not hold yet). A model's first
  // version becomes its active one; later ones wait for activate().
  Status add(Version v);

  // The version a request naming `requested` gets: a model name routes to
  // its active version or its canary; NAME@VERSION and alias ids name one
  // loaded version. `allowed`: the caller's models (empty: all); a model
  // outside it is not found. Null when nothing matches.
  Version route(const std::string& requested, const std::string& user,
                std::span<const std::string> allowed = {}) const;
  // Where requests that name no model go: the first model's routing.
  Version default_version(const std::string& user = "") const;
  // Whether `name` is a model the caller may see.
  static bool may_see(const std::string& name, std::span<const std::string> allowed);

  Version find(const std::string& name, const std::string& version) const;

  // Makes loaded `version` the model's active one for every new request
  // (canary cleared); the old active one becomes `previous`. Returns the
  // versions no longer routed (for the caller to log; dropping them is
  // what unloads them once their requests finish).
  Result<std::vector<Version>> activate(const std::string& name, const std::string& version);
  // Sends `percent` (1..99) of the model's requests to loaded `version`.
  // A previous canary that is not this version is returned (unrouted).
  Result<std::vector<Version>> set_canary(const std::string& name, const std::string& version,
                                          int percent);

  std::vector<ModelView> models() const;
  std::optional<ModelView> model(const std::string& name) const;

 private:
  // Versions in number order ("2" before "10"), then other names.
  struct VersionOrder {
    bool operator()(const std::string& a, const std::string& b) const;
  };
  struct Entry {
    std::string name;
    std::map<std::string, Version, VersionOrder> loaded;
    std::string active, canary, previous;
    int percent = 0;
  };
  Entry* entry(const std::string& name);
  const Entry* entry(const std::string& name) const;
  static Version version_of(const Entry& e, const std::string& version);
  static ModelView view(const Entry& e);
  // Drops loaded versions that are neither active nor the canary.
  static std::vector<Version> prune(Entry& e);

  mutable std::shared_mutex mu_;  // guards models_
  std::vector<Entry> models_;     // in the order added
};

}  // namespace r1
