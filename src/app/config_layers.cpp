#include "app/config_layers.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace r1 {

namespace {

std::string normalise_key(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::string yaml_position(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return " (line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
         ")";
}

// Options the file and the environment never set: the layering itself and
// one-shot actions.
bool layer_settable(const std::string& name) {
  return name != "help" && name != "config" && name != "print-config";
}

const CLI::Option* option_named(const CLI::App& cmd, const std::string& key) {
  if (key.empty()) return nullptr;
  return cmd.get_option_no_throw("--" + key);
}

std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(value);
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

Result<std::vector<ConfigEntry>> parse_config_yaml(const std::string& text,
                                                   const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return invalid_argument("config " + origin + ": " + e.msg + yaml_position(e.mark));
  }
  std::vector<ConfigEntry> entries;
  if (root.IsNull()) return entries;  // an empty file sets nothing
  if (!root.IsMap()) {
    return invalid_argument("config " + origin +
                            ": expected a mapping of setting names to values at the top level");
  }
  std::set<std::string> seen;
  for (const auto& pair : root) {
    if (!pair.first.IsScalar()) {
      return invalid_argument("config " + origin + ": a key is not a plain name" +
                              yaml_position(pair.first.Mark()));
    }
    ConfigEntry e;
    e.written = pair.first.Scalar();
    e.key = normalise_key(e.written);
    if (!seen.insert(e.key).second) {
      return invalid_argument("config " + origin + ": key '" + pair.first.Scalar() +
                              "' is set twice" + yaml_position(pair.first.Mark()));
    }
    const YAML::Node& v = pair.second;
    if (v.IsScalar()) {
      e.values.push_back(v.Scalar());
    } else if (v.IsSequence()) {
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          return invalid_argument("config " + origin + ": key '" + pair.first.Scalar() +
                                  "': list items must be plain values" +
                                  yaml_position(item.Mark()));
        }
        e.values.push_back(item.Scalar());
      }
    } else if (v.IsNull()) {
      return invalid_argument("config " + origin + ": key '" + pair.first.Scalar() +
                              "' has no value" + yaml_position(pair.first.Mark()));
    } else {
      return invalid_argument("config " + origin + ": key '" + pair.first.Scalar() +
                              "' must be a value or a list of values, not a mapping" +
                              yaml_position(v.Mark()));
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

std::string config_env_name(const std::string& key) {
  std::string out = "R1SERVE_";
  for (char c : key) {
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<std::vector<std::string>> apply_config_layers(const CLI::App& cmd,
                                                     const std::vector<std::string>& args,
                                                     const EnvLookup& env) {
  // The subcommand is the first argument that is not an option.
  size_t at = 1;
  while (at < args.size() && args[at].rfind("-", 0) == 0) ++at;
  if (at >= args.size() || args[at] != cmd.get_name()) return args;

  std::set<std::string> on_command_line;
  std::optional<std::string> config_path;
  for (size_t i = at + 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t eq = a.find('=');
    const std::string name = normalise_key(a.substr(2, eq == std::string::npos ? a.npos : eq - 2));
    on_command_line.insert(name);
    if (name == "config") {
      if (eq != std::string::npos) {
        config_path = a.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        config_path = args[i + 1];
      }
    }
  }
  if (!config_path && option_named(cmd, "config") != nullptr) {
    config_path = env(config_env_name("config"));
  }

  // key -> values, the environment replacing the file.
  std::map<std::string, std::vector<std::string>> layered;
  if (config_path && !config_path->empty()) {
    std::ifstream in(*config_path, std::ios::binary);
    if (!in) return not_found("config " + *config_path + ": cannot open the file");
    std::ostringstream text;
    text << in.rdbuf();
    R1_ASSIGN_OR_RETURN(std::vector<ConfigEntry> entries,
                        parse_config_yaml(text.str(), *config_path));
    for (ConfigEntry& e : entries) {
      if (!layer_settable(e.key) || option_named(cmd, e.key) == nullptr) {
        return invalid_argument("config " + *config_path + ": unknown key '" + e.written +
                                "' (see `r1serve " + cmd.get_name() + " --help` for the names)");
      }
      layered[e.key] = std::move(e.values);
    }
  }
  for (const CLI::Option* opt : cmd.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string& key = opt->get_lnames()[0];
    if (!layer_settable(key)) continue;
    std::optional<std::string> v = env(config_env_name(key));
    if (!v) continue;
    layered[key] = opt->get_items_expected_max() > 1 ? split_list(*v) : std::vector{*v};
  }

  std::vector<std::string> out(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  for (const auto& [key, values] : layered) {
    if (on_command_line.count(key) != 0) continue;  // flags win
    for (const std::string& v : values) out.push_back("--" + key + "=" + v);
  }
  out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(at) + 1, args.end());
  return out;
}

std::string effective_config_yaml(const CLI::App& cmd) {
  // Written line by line so each description sits above its key; values go
  // through the emitter for correct quoting.
  std::string out;
  for (const CLI::Option* opt : cmd.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string& key = opt->get_lnames()[0];
    if (!layer_settable(key)) continue;
    std::vector<std::string> values;
    const bool is_flag = opt->get_expected_min() == 0;
    if (opt->count() > 0) {
      values = opt->results();
      if (is_flag && (values.empty() || values.back().empty())) values = {"true"};
    } else if (is_flag) {
      values = {"false"};
    } else {
      const std::string def = opt->get_default_str();
      if (def.size() >= 2 && def.front() == '[' && def.back() == ']') {
        values = split_list(def.substr(1, def.size() - 2));
      } else {
        values = {def};
      }
    }
    if (opt->get_group() == kSecretsGroup) {
      for (std::string& v : values) {
        if (!v.empty()) v = "<redacted>";
      }
    }
    YAML::Emitter y;
    if (opt->get_items_expected_max() > 1) {
      y << YAML::Flow << YAML::BeginSeq;
      for (const std::string& v : values) y << v;
      y << YAML::EndSeq;
    } else {
      y << (values.empty() ? std::string() : values.back());
    }
    if (!opt->get_description().empty()) out += "# " + opt->get_description() + "\n";
    out += key + ": " + y.c_str() + "\n";
  }
  return out;
}

}  // namespace r1
