// Config layering: file < R1SERVE_* environment < flags, unknown keys and
// malformed files rejected with the key named, the effective configuration
// printed with secrets redacted. Driven through a CLI11 subcommand declared
// here, so the expectations do not come from the serve command under test.
#include "app/config_layers.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <map>

namespace r1 {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  CLI::App app{"t"};
  CLI::App* cmd = nullptr;
  std::string config;
  std::string host = "127.0.0.1";
  int port = 8000;
  int64_t kv_cache_bytes = 0;
  bool verbose = false;
  std::vector<std::string> tags;
  std::string secret;

  Fixture() {
    cmd = app.add_subcommand("serve");
    cmd->option_defaults()->always_capture_default();
    cmd->add_option("--config", config);
    cmd->add_option("--host", host, "address");
    cmd->add_option("--port", port)->check(CLI::Range(0, 65535));
    cmd->add_option("--kv-cache-bytes", kv_cache_bytes);
    cmd->add_flag("--verbose", verbose);
    cmd->add_option("--tag", tags);
    cmd->add_option("--jwt-secret", secret)->group(kSecretsGroup);
    app.add_subcommand("other")->add_option("--port", port);
  }

  // Applies the layers and parses; returns the layering status.
  Status run(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), "r1serve");
    Result<std::vector<std::string>> layered =
        apply_config_layers(*cmd, args, [&](const std::string& n) -> std::optional<std::string> {
          auto it = env.find(n);
          if (it == env.end()) return std::nullopt;
          return it->second;
        });
    if (!layered.ok()) return layered.status();
    std::vector<std::string> reversed(layered->rbegin(), layered->rend() - 1);
    app.parse(reversed);
    return ok_status();
  }
};

class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text) {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("r1-config-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".yaml");
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { fs::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

TEST(ConfigLayersTest, FileSetsWhatNothingElseSets) {
  ConfigFile f("host: 0.0.0.0\nkv_cache_bytes: 1048576\nverbose: true\ntag: [a, b]\n");
  Fixture x;
  ASSERT_TRUE(x.run({"serve", "--config", f.path()}).ok());
  EXPECT_EQ(x.host, "0.0.0.0");
  EXPECT_EQ(x.kv_cache_bytes, 1048576);
  EXPECT_EQ(x.port, 8000);
  EXPECT_TRUE(x.verbose);
  EXPECT_EQ(x.tags, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigLayersTest, EnvironmentOverridesFileAndFlagsOverrideBoth) {
  ConfigFile f("host: 0.0.0.0\nport: 1000\nkv-cache-bytes: 5\n");
  Fixture x;
  ASSERT_TRUE(x.run({"serve", "--config=" + f.path(), "--port", "3000"},
                    {{"R1SERVE_PORT", "2000"}, {"R1SERVE_KV_CACHE_BYTES", "7"}})
                  .ok());
  EXPECT_EQ(x.port, 3000);         // flag
  EXPECT_EQ(x.kv_cache_bytes, 7);  // environment over file
  EXPECT_EQ(x.host, "0.0.0.0");    // file
}

TEST(ConfigLayersTest, EnvironmentAloneAndConfigPathFromEnvironment) {
  ConfigFile f("host: 10.0.0.1\n");
  Fixture x;
  ASSERT_TRUE(x.run({"serve"}, {{"R1SERVE_CONFIG", f.path()}, {"R1SERVE_TAG", "x, y"}}).ok());
  EXPECT_EQ(x.host, "10.0.0.1");
  EXPECT_EQ(x.tags, (std::vector<std::string>{"x", "y"}));
}

TEST(ConfigLayersTest, OtherSubcommandsAreLeftAlone) {
  Fixture x;
  ASSERT_TRUE(x.run({"other", "--port", "5"}, {{"R1SERVE_PORT", "2000"}}).ok());
  EXPECT_EQ(x.port, 5);
}

TEST(ConfigLayersTest, UnknownKeyIsNamed) {
  ConfigFile f("host: a\nmax_sequences: 4\n");
  Fixture x;
  Status s = x.run({"serve", "--config", f.path()});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown key 'max_sequences'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(f.path()), std::string::npos);
}

TEST(ConfigLayersTest, MalformedFilesAreRejectedWithAPosition) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c :
       {Case{"port: [1, 2\n", "line"}, Case{"- a\n- b\n", "mapping"},
        Case{"port: 1\nport: 2\n", "'port' is set twice"},
        Case{"port: 1\nport_: 2\nhost:\n", "has no value"}, Case{"host: {a: 1}\n", "not a mapping"},
        Case{"tag: [[1]]\n", "plain values"},
        Case{"config: other.yaml\n", "unknown key 'config'"}}) {
    ConfigFile f(c.text);
    Fixture x;
    Status s = x.run({"serve", "--config", f.path()});
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.text << " -> " << s.message();
  }
  Fixture x;
  EXPECT_EQ(x.run({"serve", "--config", "/nonexistent/r1.yaml"}).code(), StatusCode::kNotFound);
}

TEST(ConfigLayersTest, FileValuesGoThroughTheFlagValidators) {
  ConfigFile f("port: 70000\n");
  Fixture x;
  EXPECT_THROW(x.run({"serve", "--config", f.path()}), CLI::ValidationError);
}

TEST(ConfigLayersTest, EmptyFileSetsNothing) {
  ConfigFile f("# nothing here\n");
  Fixture x;
  ASSERT_TRUE(x.run({"serve", "--config", f.path()}).ok());
  EXPECT_EQ(x.port, 8000);
}

TEST(ConfigLayersTest, EffectiveConfigRoundTripsAndRedactsSecrets) {
  ConfigFile f("host: 'a: b'\njwt-secret: hunter2\ntag: [p, q]\n");
  Fixture x;
  ASSERT_TRUE(x.run({"serve", "--config", f.path(), "--verbose"}, {{"R1SERVE_PORT", "81"}}).ok());
  const std::string printed = effective_config_yaml(*x.cmd);
  EXPECT_EQ(printed.find("hunter2"), std::string::npos) << printed;
  EXPECT_NE(printed.find("<redacted>"), std::string::npos);
  EXPECT_NE(printed.find("# address\nhost:"), std::string::npos) << printed;

  // Fed back as a config file (secrets aside), it reproduces the settings.
  std::string without_secret;
  std::istringstream lines(printed);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("jwt-secret:", 0) != 0) without_secret += line + "\n";
  }
  ConfigFile again(without_secret);
  Fixture y;
  ASSERT_TRUE(y.run({"serve", "--config", again.path()}).ok()) << without_secret;
  EXPECT_EQ(y.host, "a: b");
  EXPECT_EQ(y.port, 81);
  EXPECT_TRUE(y.verbose);
  EXPECT_EQ(y.kv_cache_bytes, 0);
  EXPECT_EQ(y.tags, (std::vector<std::string>{"p", "q"}));
}

}  // namespace
}  // namespace r1
