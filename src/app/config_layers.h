// Layered configuration for a subcommand: a YAML file (--config FILE), then
// R1SERVE_* environment variables, then flags. Every key of the file is the
// long name of one of the subcommand's flags (dashes or underscores), so the
// file, the environment and the command line share one set of names, one set
// of validators and one help text.
//
// The layers are applied by rewriting the argument list before CLI11 parses
// it: a key the command line does not set becomes "--key=value", taken from
// the environment when R1SERVE_KEY is set, else from the file.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace CLI {
class App;
}

namespace r1 {

// One setting of a config file: its normalised key ("kv-cache-bytes") and
// its value(s) as strings; a YAML sequence gives several values.
struct ConfigEntry {
  std::string key;
  std::string written;  // the key as the file spells it, for messages
  std::vector<std::string> values;
};

// Parses a YAML config document: a mapping of flag names to scalars or
// sequences of scalars. Nested mappings, anchors to mappings and duplicate
// keys are INVALID_ARGUMENT naming the key. `origin` names the file in
// messages.
Result<std::vector<ConfigEntry>> parse_config_yaml(const std::string& text,
                                                   const std::string& origin);

// "kv_cache_bytes" -> "R1SERVE_KV_CACHE_BYTES".
std::string config_env_name(const std::string& key);

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
// Reads the process environment.
EnvLookup process_env();

// args: the full argument list, args[0] the program, the subcommand's name
// somewhere after it. When `cmd` is that subcommand, returns the arguments
// with the file and environment layers folded in; otherwise returns args
// unchanged. Errors: an unreadable or malformed file, a key naming no flag of
// the subcommand ("config FILE: unknown key 'foo'").
Result<std::vector<std::string>> apply_config_layers(const CLI::App& cmd,
                                                     const std::vector<std::string>& args,
                                                     const EnvLookup& env);

// The effective configuration of a parsed subcommand as YAML, one key per
// flag, defaults included; options in the "Secrets" group print as
// "<redacted>" when set.
std::string effective_config_yaml(const CLI::App& cmd);

// Options of this group have their values redacted by effective_config_yaml.
inline constexpr const char* kSecretsGroup = "Secrets";

}  // namespace r1
