// libFuzzer target: the YAML the server reads at start-up. Byte 0 picks the
// reader, the rest is the file's text:
//   even: the API-key file (ApiKeyStore::parse), then a few keys looked up;
//   odd:  a --config file: parse_config_yaml, then the whole layering
//         (apply_config_layers over a small subcommand, the file written to
//         a temporary path, one setting from the environment), the result
//         parsed by CLI11 and printed back with effective_config_yaml.
// Properties: errors explain themselves (nothing throws out of the readers);
// config entries have non-empty values lists only for keys that are set.
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "app/config_layers.h"
#include "server/auth/api_key_store.h"

namespace {

void api_keys(const std::string& text) {
  auto store = r1::ApiKeyStore::parse(text, "fuzz.yaml");
  if (!store.ok()) {
    if (store.status().message().empty()) std::abort();
    return;
  }
  for (const char* key : {"", "test-key", "sk-fuzz"}) {
    const r1::ApiKeyEntry* e = store->find(key);
    if (e != nullptr && e->id.empty()) std::abort();
  }
}

// A temporary file that holds the config text for apply_config_layers.
const std::string& config_path() {
  static const std::string path = [] {
    char p[] = "/dev/shm/r1serve-config-fuzz-XXXXXX";
    const int fd = mkstemp(p);
    if (fd < 0) std::abort();
    close(fd);
    return std::string(p);
  }();
  return path;
}

void config_layers(const std::string& text) {
  auto entries = r1::parse_config_yaml(text, "fuzz.yaml");
  if (!entries.ok()) {
    if (entries.status().message().empty()) std::abort();
  } else {
    for (const r1::ConfigEntry& e : *entries) {
      if (e.key.find('_') != std::string::npos) std::abort();  // normalised to dashes
    }
  }

  std::FILE* f = std::fopen(config_path().c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);

  CLI::App app("r1serve");
  CLI::App* cmd = app.add_subcommand("serve", "serve");
  std::string host = "127.0.0.1", config, secret;
  int port = 8000;
  int64_t kv_cache_bytes = 0;
  double temperature = 0.6;
  bool auth_disabled = false;
  std::vector<std::string> aliases;
  cmd->add_option("--config", config, "config file");
  cmd->add_option("--host", host, "address");
  cmd->add_option("--port", port, "port")->check(CLI::Range(0, 65535));
  cmd->add_option("--kv-cache-bytes", kv_cache_bytes, "bytes");
  cmd->add_option("--temperature", temperature, "default temperature");
  cmd->add_option("--alias", aliases, "aliases");
  cmd->add_flag("--auth-disabled", auth_disabled, "no auth");
  cmd->add_option("--jwt-secret", secret, "secret")->group(r1::kSecretsGroup);

  const std::vector<std::string> args = {"r1serve",     "serve",  "--config",
                                         config_path(), "--port", "9000"};
  const r1::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "R1SERVE_ALIAS") return std::string("a, b,,c");
    return std::nullopt;
  };
  auto layered = r1::apply_config_layers(*cmd, args, env);
  if (!layered.ok()) {
    if (layered.status().message().empty()) std::abort();
    return;
  }
  // CLI11 wants argv order reversed and without the program name.
  std::vector<std::string> argv(layered->rbegin(), layered->rend() - 1);
  try {
    app.parse(argv);
  } catch (const CLI::ParseError&) {
    return;  // a value the flag's validator refuses: the CLI prints it
  }
  (void)r1::effective_config_yaml(*cmd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    api_keys(text);
  } else {
    config_layers(text);
  }
  return 0;
}
