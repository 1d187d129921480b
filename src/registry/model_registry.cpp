#include "registry/model_registry.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "registry/mlflow_sqlite.h"

namespace r1 {

namespace {

namespace fs = std::filesystem;

constexpr const char* kModelUri = "models:/";

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

std::optional<int64_t> parse_number(const std::string& s) {
  if (s.empty() || s.size() > 15 ||
      !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  const int64_t v = std::stoll(s);
  if (v < 1) return std::nullopt;
  return v;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A local path from a file: URI or a plain path; nullopt for other schemes.
std::optional<std::string> local_path(const std::string& location) {
  if (location.rfind("file://", 0) == 0) {
    std::string rest = location.substr(7);
    // file://host/path: only an empty host or localhost is local.
    if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(9);
    if (rest.empty() || rest[0] != '/') return std::nullopt;
    return rest;
  }
  if (location.rfind("file:", 0) == 0) return location.substr(5);
  const size_t colon = location.find(':');
  const size_t slash = location.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
    return std::nullopt;  // s3:, runs:, models:, mlflow-artifacts:, ...
  }
  return location;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// One version of an MLflow registry, as either store keeps it: a deleted
// version, or one without a number, is skipped. storage_location is where
// the registry resolved the source to (for models:/ sources, the logged
// model's artifacts); a location that is not local is kept as it is, so
// that resolving the version can say why it cannot be served.
void add_mlflow_version(RegistryModel* m, const std::string& number, const std::string& stage,
                        const std::string& storage_location, const std::string& source) {
  if (stage == "Deleted_Internal") return;
  const std::optional<int64_t> n = parse_number(number);
  if (!n) return;
  const std::string& location = storage_location.empty() ? source : storage_location;
  RegistryVersion rv{*n, location, stage};
  if (std::optional<std::string> p = local_path(location)) {
    rv.path = fs::path(*p).lexically_normal().string();
  }
  m->versions[*n] = std::move(rv);
}

// The database file of a sqlite: URI (sqlite:///relative, sqlite:////absolute).
std::optional<std::string> sqlite_path(const std::string& uri) {
  constexpr std::string_view kScheme = "sqlite:///";
  if (uri.rfind(kScheme, 0) != 0) return std::nullopt;
  std::string path = uri.substr(kScheme.size());
  if (const size_t q = path.find('?'); q != std::string::npos) path.resize(q);
  return path;
}

std::string names_of(const std::vector<RegistryModel>& models) {
  std::string s;
  for (const RegistryModel& m : models) s += (s.empty() ? "" : ", ") + m.name;
  return s.empty() ? "no models" : s;
}

}  // namespace

std::vector<std::string> RegistryModel::aliases_of(int64_t version) const {
  std::vector<std::string> out;
  for (const auto& [alias, v] : aliases) {
    if (v == version) out.push_back(alias);
  }
  return out;
}

bool is_model_uri(const std::string& ref) {
  return ref.rfind(kModelUri, 0) == 0;
}

std::string default_mlflow_store() {
  for (const char* var : {"MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_URI"}) {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') continue;
    if (sqlite_path(v)) return v;
    if (std::optional<std::string> p = local_path(v)) return *p;
  }
  // As MLflow 3 chooses: a file store that exists, else its database.
  std::error_code ec;
  if (!fs::is_directory("mlruns/models", ec) && is_sqlite_file("mlflow.db")) {
    return "sqlite:///mlflow.db";
  }
  return "mlruns";
}

Status ModelRegistry::add(RegistryModel model) {
  if (!valid_name(model.name)) {
    return invalid_argument(source_ + ": model name \"" + model.name +
                            "\" must be letters, digits, '-', '_' or '.'");
  }
  if (find(model.name) != nullptr) {
    return invalid_argument(source_ + ": model " + model.name + " is listed twice");
  }
  for (const auto& [alias, v] : model.aliases) {
    if (!valid_name(alias) || parse_number(alias)) {
      return invalid_argument(source_ + ": model " + model.name + ": alias \"" + alias +
                              "\" must be a name (letters, digits, '-', '_', '.'), not a number");
    }
    if (model.versions.count(v) == 0) {
      return invalid_argument(source_ + ": model " + model.name + ": alias " + alias +
                              " names version " + std::to_string(v) + ", which it does not have");
    }
  }
  const auto at = std::lower_bound(
      models_.begin(), models_.end(), model.name,
      [](const RegistryModel& m, const std::string& name) { return m.name < name; });
  models_.insert(at, std::move(model));
  return ok_status();
}

const RegistryModel* ModelRegistry::find(const std::string& name) const {
  for (const RegistryModel& m : models_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

ModelRegistry ModelRegistry::single(const std::string& name, const std::string& path) {
  ModelRegistry r;
  r.source_ = path;
  RegistryModel m;
  m.name = name;
  m.versions[1] = RegistryVersion{1, path, ""};
  r.models_.push_back(std::move(m));
  return r;
}

Result<ModelRegistry> ModelRegistry::parse_yaml(const std::string& text,
                                                const std::string& base_dir,
                                                const std::string& label) {
  ModelRegistry r;
  r.source_ = label;
  auto bad = [&](const std::string& why) { return invalid_argument(label + ": " + why); };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return bad(std::string("not valid YAML: ") + e.what());
  }
  if (!root.IsMap() || !root["models"] || !root["models"].IsMap()) {
    return bad("a map under \"models:\" expected (name -> versions, aliases)");
  }
  try {
    for (const auto& kv : root["models"]) {
      RegistryModel m;
      m.name = kv.first.as<std::string>();
      const YAML::Node& body = kv.second;
      if (!body.IsMap()) return bad("model " + m.name + ": a map expected");
      for (const auto& field : body) {
        const std::string key = field.first.as<std::string>();
        if (key != "versions" && key != "aliases" && key != "default") {
          return bad("model " + m.name + ": unknown key " + key +
                     " (versions, aliases and default are allowed)");
        }
      }
      if (!body["versions"] || !body["versions"].IsMap() || body["versions"].size() == 0) {
        return bad("model " + m.name + ": \"versions\" must map version numbers to paths");
      }
      for (const auto& v : body["versions"]) {
        const std::string key = v.first.as<std::string>();
        const std::optional<int64_t> n = parse_number(key);
        if (!n) return bad("model " + m.name + ": version \"" + key + "\" is not a number >= 1");
        std::string path;
        if (v.second.IsScalar()) {
          path = v.second.as<std::string>();
        } else if (v.second.IsMap() && v.second["path"] && v.second["path"].IsScalar()) {
          path = v.second["path"].as<std::string>();
        } else {
          return bad("model " + m.name + " version " + key + ": a path, or {path: ...}");
        }
        if (path.empty()) return bad("model " + m.name + " version " + key + ": empty path");
        const std::optional<std::string> local = local_path(path);
        if (!local) {
          return bad("model " + m.name + " version " + key + ": " + path +
                     " is not a local path or file: URI");
        }
        fs::path p(*local);
        if (p.is_relative()) p = fs::path(base_dir) / p;
        if (!m.versions.emplace(*n, RegistryVersion{*n, p.lexically_normal().string(), ""})
                 .second) {
          return bad("model " + m.name + ": version " + key + " is listed twice");
        }
      }
      if (body["aliases"]) {
        if (!body["aliases"].IsMap()) return bad("model " + m.name + ": aliases must be a map");
        for (const auto& a : body["aliases"]) {
          const std::string v = a.second.as<std::string>();
          const std::optional<int64_t> n = parse_number(v);
          if (!n)
            return bad("model " + m.name + ": alias " + a.first.as<std::string>() +
                       " must name a version number");
          m.aliases[a.first.as<std::string>()] = *n;
        }
      }
      if (body["default"]) m.default_alias = body["default"].as<std::string>();
      R1_RETURN_IF_ERROR(r.add(std::move(m)));
    }
  } catch (const YAML::Exception& e) {
    return bad(std::string("unexpected value: ") + e.what());
  }
  return r;
}

Result<ModelRegistry> ModelRegistry::read_mlflow(const std::string& mlruns) {
  ModelRegistry r;
  r.source_ = mlruns;
  const fs::path models_dir = fs::path(mlruns) / "models";
  std::error_code ec;
  if (!fs::is_directory(models_dir, ec)) {
    return not_found(mlruns + ": not an MLflow file store (no models/ folder)");
  }
  try {
    for (const fs::directory_entry& model_dir : fs::directory_iterator(models_dir)) {
      const fs::path meta = model_dir.path() / "meta.yaml";
      if (!model_dir.is_directory() || !fs::is_regular_file(meta)) continue;
      RegistryModel m;
      const YAML::Node root = YAML::Load(read_text(meta));
      m.name = root["name"] ? root["name"].as<std::string>() : model_dir.path().filename().string();
      for (const fs::directory_entry& v : fs::directory_iterator(model_dir.path())) {
        const std::string dir = v.path().filename().string();
        if (!v.is_directory() || dir.rfind("version-", 0) != 0) continue;
        const fs::path vmeta = v.path() / "meta.yaml";
        if (!fs::is_regular_file(vmeta)) continue;
        const YAML::Node vm = YAML::Load(read_text(vmeta));
        auto field = [&vm](const char* key) {
          return vm[key] && !vm[key].IsNull() ? vm[key].as<std::string>() : std::string();
        };
        add_mlflow_version(&m, vm["version"] ? field("version") : dir.substr(8),
                           field("current_stage"), field("storage_location"), field("source"));
      }
      const fs::path aliases = model_dir.path() / "aliases";
      if (fs::is_directory(aliases)) {
        for (const fs::directory_entry& a : fs::directory_iterator(aliases)) {
          const std::optional<int64_t> n = parse_number(trim(read_text(a.path())));
          if (n && m.versions.count(*n) != 0) m.aliases[a.path().filename().string()] = *n;
        }
      }
      if (m.versions.empty()) continue;
      R1_RETURN_IF_ERROR(r.add(std::move(m)));
    }
  } catch (const std::exception& e) {
    return data_loss(mlruns + ": cannot read the MLflow registry: " + e.what());
  }
  return r;
}

Result<ModelRegistry> ModelRegistry::read_mlflow_db(const std::string& db_path) {
  R1_ASSIGN_OR_RETURN(const MlflowRows rows, read_mlflow_sqlite(db_path));
  ModelRegistry r;
  r.source_ = db_path;
  std::map<std::string, RegistryModel> by_name;
  for (const std::string& name : rows.models) by_name[name].name = name;
  for (const MlflowVersionRow& v : rows.versions) {
    const auto m = by_name.find(v.model);
    if (m == by_name.end()) continue;
    add_mlflow_version(&m->second, v.version, v.stage, v.storage_location, v.source);
  }
  for (const MlflowAliasRow& a : rows.aliases) {
    const auto m = by_name.find(a.model);
    const std::optional<int64_t> n = parse_number(a.version);
    if (m != by_name.end() && n && m->second.versions.count(*n) != 0) {
      m->second.aliases[a.alias] = *n;
    }
  }
  for (auto& [name, m] : by_name) {
    if (m.versions.empty()) continue;
    R1_RETURN_IF_ERROR(r.add(std::move(m)));
  }
  return r;
}

Result<ModelRegistry> ModelRegistry::open(const std::string& path) {
  if (std::optional<std::string> db = sqlite_path(path)) return read_mlflow_db(*db);
  std::error_code ec;
  fs::path p(path);
  if (fs::is_directory(p, ec)) {
    if (fs::is_regular_file(p / "registry.yaml"))
      p /= "registry.yaml";
    else if (fs::is_directory(p / "models"))
      return read_mlflow(p.string());
    else if (fs::is_directory(p / "mlruns" / "models"))
      return read_mlflow((p / "mlruns").string());
    else if (is_sqlite_file((p / "mlflow.db").string()))
      return read_mlflow_db((p / "mlflow.db").string());
    else {
      return not_found(path +
                       ": neither a registry (registry.yaml), an MLflow file store "
                       "(mlruns/models) nor an MLflow database (mlflow.db)");
    }
  }
  if (!fs::is_regular_file(p, ec)) return not_found(path + ": no such registry file or folder");
  if (is_sqlite_file(p.string())) return read_mlflow_db(p.string());
  return parse_yaml(read_text(p), fs::absolute(p).parent_path().string(), p.string());
}

Result<ResolvedVersion> ModelRegistry::resolve(const std::string& ref) const {
  std::string name = ref, selector;
  bool uri_path = false;  // models:/NAME/SUFFIX
  if (is_model_uri(ref)) {
    const std::string rest = ref.substr(std::string(kModelUri).size());
    const size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      name = rest.substr(0, slash);
      selector = rest.substr(slash + 1);
      uri_path = true;
    } else if (const size_t at = rest.rfind('@'); at != std::string::npos) {
      name = rest.substr(0, at);
      selector = rest.substr(at + 1);
    } else {
      return invalid_argument(ref +
                              ": a model URI is models:/NAME/VERSION, models:/NAME@ALIAS, "
                              "models:/NAME/latest or models:/NAME/STAGE");
    }
    if (selector.empty()) return invalid_argument(ref + ": nothing after the model name");
  } else if (const size_t at = ref.rfind('@'); at != std::string::npos) {
    name = ref.substr(0, at);
    selector = ref.substr(at + 1);
    if (selector.empty()) return invalid_argument(ref + ": nothing after '@'");
  }
  const RegistryModel* m = find(name);
  if (m == nullptr) {
    return not_found("model " + name + " is not in the registry " + source_ + " (it holds " +
                     names_of(models_) + ")");
  }
  auto versions_text = [&] {
    std::string s;
    for (const auto& [n, v] : m->versions) s += (s.empty() ? "" : ", ") + std::to_string(n);
    return s;
  };
  int64_t number = 0;
  if (selector.empty()) {
    const auto alias = m->aliases.find(m->default_alias);
    number = alias != m->aliases.end() ? alias->second : m->versions.rbegin()->first;
  } else if (const std::optional<int64_t> n = parse_number(selector)) {
    if (m->versions.count(*n) == 0) {
      return not_found("model " + name + " has no version " + selector + " (it has " +
                       versions_text() + ")");
    }
    number = *n;
  } else if (uri_path && lower(selector) == "latest") {
    number = m->versions.rbegin()->first;
  } else if (uri_path) {
    for (const auto& [n, v] : m->versions) {
      if (lower(v.stage) == lower(selector)) number = n;  // the latest in the stage
    }
    if (number == 0) {
      return not_found("model " + name + " has no version in stage " + selector);
    }
  } else {
    const auto alias = m->aliases.find(selector);
    if (alias == m->aliases.end()) {
      return not_found("model " + name + " has no alias or version " + selector);
    }
    number = alias->second;
  }
  const RegistryVersion& v = m->versions.at(number);
  if (!local_path(v.path) || v.path.empty()) {
    return unimplemented("model " + name + " version " + std::to_string(number) + " lies at " +
                         v.path + ", which is not a local path or file: URI");
  }
  return ResolvedVersion{m->name, number, v.path, m->aliases_of(number)};
}

}  // namespace r1
