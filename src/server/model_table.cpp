#include "server/model_table.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <random>

namespace r1 {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// 0..99 for a canary choice: from the user when given, so one user keeps
// one version, else at random.
int canary_draw(const std::string& user) {
  if (!user.empty()) return static_cast<int>(std::hash<std::string>{}(user) % 100);
  thread_local std::mt19937 rng(std::random_device{}());
  return static_cast<int>(rng() % 100);
}

}  // namespace

bool ModelTable::VersionOrder::operator()(const std::string& a, const std::string& b) const {
  const bool na = all_digits(a), nb = all_digits(b);
  if (na != nb) return na;
  if (na && a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

ModelTable::Entry* ModelTable::entry(const std::string& name) {
  for (Entry& e : models_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const ModelTable::Entry* ModelTable::entry(const std::string& name) const {
  for (const Entry& e : models_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

ModelTable::Version ModelTable::version_of(const Entry& e, const std::string& version) {
  const auto it = e.loaded.find(version);
  return it == e.loaded.end() ? nullptr : it->second;
}

bool ModelTable::may_see(const std::string& name, std::span<const std::string> allowed) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

Status ModelTable::add(Version v) {
  std::unique_lock lock(mu_);
  Entry* e = entry(v->name);
  if (e == nullptr) {
    models_.push_back(Entry{v->name, {}, v->version, "", "", 0});
    e = &models_.back();
  }
  if (!e->loaded.emplace(v->version, v).second) {
    return invalid_argument("model " + v->name + " version " + v->version + " is already loaded");
  }
  return ok_status();
}

ModelTable::Version ModelTable::route(const std::string& requested, const std::string& user,
                                      std::span<const std::string> allowed) const {
  std::shared_lock lock(mu_);
  for (const Entry& e : models_) {
    if (e.name != requested) continue;
    if (!may_see(e.name, allowed)) return nullptr;
    if (!e.canary.empty() && canary_draw(user) < e.percent) return version_of(e, e.canary);
    return version_of(e, e.active);
  }
  for (const Entry& e : models_) {
    if (!may_see(e.name, allowed)) continue;
    for (const auto& [v, m] : e.loaded) {
      if (m->answers_to(requested)) return m;
    }
  }
  return nullptr;
}

ModelTable::Version ModelTable::default_version(const std::string& user) const {
  std::string first;
  {
    std::shared_lock lock(mu_);
    if (models_.empty()) return nullptr;
    first = models_.front().name;
  }
  return route(first, user);
}

ModelTable::Version ModelTable::find(const std::string& name, const std::string& version) const {
  std::shared_lock lock(mu_);
  const Entry* e = entry(name);
  return e == nullptr ? nullptr : version_of(*e, version);
}

std::vector<ModelTable::Version> ModelTable::prune(Entry& e) {
  std::vector<Version> out;
  for (auto it = e.loaded.begin(); it != e.loaded.end();) {
    if (it->first != e.active && it->first != e.canary) {
      out.push_back(it->second);
      it = e.loaded.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

Result<std::vector<ModelTable::Version>> ModelTable::activate(const std::string& name,
                                                              const std::string& version) {
  std::unique_lock lock(mu_);
  Entry* e = entry(name);
  if (e == nullptr) return not_found("model " + name + " is not served");
  if (!version_of(*e, version)) {
    return not_found("model " + name + " version " + version + " is not loaded");
  }
  if (e->active != version) {
    e->previous = e->active;
    e->active = version;
  }
  e->canary.clear();
  e->percent = 0;
  return prune(*e);
}

Result<std::vector<ModelTable::Version>> ModelTable::set_canary(const std::string& name,
                                                                const std::string& version,
                                                                int percent) {
  if (percent < 1 || percent > 99) return invalid_argument("a canary takes 1 to 99 percent");
  std::unique_lock lock(mu_);
  Entry* e = entry(name);
  if (e == nullptr) return not_found("model " + name + " is not served");
  if (!version_of(*e, version)) {
    return not_found("model " + name + " version " + version + " is not loaded");
  }
  if (version == e->active) {
    return invalid_argument("model " + name + " version " + version +
                            " is the active version; a canary must be another");
  }
  e->canary = version;
  e->percent = percent;
  return prune(*e);
}

ModelTable::ModelView ModelTable::view(const Entry& e) {
  ModelView v;
  v.name = e.name;
  v.active = version_of(e, e.active);
  v.canary = e.canary.empty() ? nullptr : version_of(e, e.canary);
  v.canary_percent = e.canary.empty() ? 0 : e.percent;
  v.previous = e.previous;
  for (const auto& [n, m] : e.loaded) v.loaded.push_back(m);
  return v;
}

std::vector<ModelTable::ModelView> ModelTable::models() const {
  std::shared_lock lock(mu_);
  std::vector<ModelView> out;
  for (const Entry& e : models_) out.push_back(view(e));
  return out;
}

std::optional<ModelTable::ModelView> ModelTable::model(const std::string& name) const {
  std::shared_lock lock(mu_);
  const Entry* e = entry(name);
  if (e == nullptr) return std::nullopt;
  return view(*e);
}

}  // namespace r1
