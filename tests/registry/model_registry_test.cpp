// Registry YAML and reference resolution; databases that are not MLflow's.
// (MLflow's file store and SQLite store are tested against MLflow's own
// client in test_registry.py.)
#include "registry/model_registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace r1 {
namespace {

constexpr const char* kYaml = R"(models:
  r1-qwen:
    versions:
      1: /models/r1-v1
      2: {path: r1-v2.gguf}
      10: file:///models/r1-v10
    aliases:
      production: 2
      staging: 10
      old: 1
  llama:
    default: stable
    versions:
      3: /models/llama
    aliases:
      stable: 3
)";

ModelRegistry registry() {
  auto r = ModelRegistry::parse_yaml(kYaml, "/srv/reg", "reg.yaml");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(r).value();
}

TEST(ModelRegistryTest, ReadsModelsVersionsAndAliases) {
  const ModelRegistry r = registry();
  ASSERT_EQ(r.models().size(), 2u);
  EXPECT_EQ(r.models()[0].name, "llama");  // sorted
  const RegistryModel* m = r.find("r1-qwen");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->versions.size(), 3u);
  EXPECT_EQ(m->versions.at(2).path, "/srv/reg/r1-v2.gguf");  // relative to the YAML
  EXPECT_EQ(m->versions.at(10).path, "/models/r1-v10");      // a file: URI
}

TEST(ModelRegistryTest, ResolvesEveryReferenceForm) {
  const ModelRegistry r = registry();
  struct Case {
    std::string ref;
    int64_t version;
  };
  for (const Case& c :
       {Case{"r1-qwen", 2}, Case{"r1-qwen@production", 2}, Case{"r1-qwen@staging", 10},
        Case{"r1-qwen@1", 1}, Case{"models:/r1-qwen/1", 1}, Case{"models:/r1-qwen@old", 1},
        Case{"models:/r1-qwen/latest", 10}, Case{"llama", 3}}) {
    auto v = r.resolve(c.ref);
    ASSERT_TRUE(v.ok()) << c.ref << ": " << v.status().message();
    EXPECT_EQ(v->version, c.version) << c.ref;
  }
  auto v = r.resolve("r1-qwen@production");
  EXPECT_EQ(v->model, "r1-qwen");
  EXPECT_EQ(v->path, "/srv/reg/r1-v2.gguf");
  EXPECT_EQ(v->aliases, std::vector<std::string>{"production"});
}

TEST(ModelRegistryTest, ABareNameWithoutItsDefaultAliasTakesTheLatestVersion) {
  auto r = ModelRegistry::parse_yaml("models:\n  m:\n    versions: {1: a, 7: b, 3: c}\n", "/x",
                                     "r.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->resolve("m")->version, 7);
}

TEST(ModelRegistryTest, UnknownNamesVersionsAndAliasesAreNotFoundAndSayWhatExists) {
  const ModelRegistry r = registry();
  struct Case {
    std::string ref, words;
  };
  for (const Case& c :
       {Case{"gpt", "model gpt is not in the registry reg.yaml (it holds llama, r1-qwen)"},
        Case{"r1-qwen@5", "has no version 5 (it has 1, 2, 10)"},
        Case{"r1-qwen@canary", "has no alias or version canary"},
        Case{"models:/r1-qwen/Production", "no version in stage Production"}}) {
    auto v = r.resolve(c.ref);
    ASSERT_FALSE(v.ok()) << c.ref;
    EXPECT_EQ(v.status().code(), StatusCode::kNotFound) << c.ref;
    EXPECT_NE(v.status().message().find(c.words), std::string::npos) << v.status().message();
  }
  for (const char* ref : {"models:/r1-qwen", "r1-qwen@", "models:/r1-qwen/"}) {
    EXPECT_EQ(r.resolve(ref).status().code(), StatusCode::kInvalidArgument) << ref;
  }
}

TEST(ModelRegistryTest, BadRegistriesAreRefusedWithTheReason) {
  struct Case {
    std::string yaml, words;
  };
  for (const Case& c : {
           Case{"models: [a, b]", "a map under \"models:\""},
           Case{"models:\n  m:\n    versions: {one: a}\n", "version \"one\" is not a number"},
           Case{"models:\n  m:\n    versions: {0: a}\n", "version \"0\" is not a number >= 1"},
           Case{"models:\n  m:\n    versions: {1: a}\n    aliases: {p: 2}\n",
                "alias p names version 2, which it does not have"},
           Case{"models:\n  m:\n    versions: {1: a}\n    aliases: {7: 1}\n",
                "alias \"7\" must be a name"},
           Case{"models:\n  m:\n    versions: {1: s3://bucket/m}\n",
                "is not a local path or file: URI"},
           Case{"models:\n  \"a b\":\n    versions: {1: a}\n", "model name \"a b\""},
           Case{"models:\n  m:\n    versions: {1: a}\n    weights: x\n", "unknown key weights"},
           Case{"models:\n  m:\n    aliases: {p: 1}\n", "\"versions\" must map"},
           Case{"models: {m: {versions: {1: a}}\n", "not valid YAML"},
       }) {
    auto r = ModelRegistry::parse_yaml(c.yaml, "/x", "r.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.status().message().find(c.words), std::string::npos)
        << c.yaml << " -> " << r.status().message();
    EXPECT_NE(r.status().message().find("r.yaml"), std::string::npos);
  }
}

TEST(ModelRegistryTest, ASingleFolderIsOneModelWithVersionOne) {
  const ModelRegistry r = ModelRegistry::single("tiny", "/models/tiny");
  auto v = r.resolve("tiny");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 1);
  EXPECT_EQ(v->path, "/models/tiny");
  EXPECT_EQ(r.resolve("tiny@1")->path, "/models/tiny");
}

TEST(ModelRegistryTest, ModelUrisAreRecognised) {
  EXPECT_TRUE(is_model_uri("models:/a/1"));
  EXPECT_FALSE(is_model_uri("/models/a"));
  EXPECT_FALSE(is_model_uri("models/a"));
}

// A SQLite file that is not an MLflow registry, or a file that only claims
// to be SQLite, is refused with what it is, never read as an empty registry.
TEST(ModelRegistryTest, DatabasesThatAreNotMlflowsAreRefused) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("r1serve-db-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string other = (dir / "other.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE experiments (id INTEGER)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = ModelRegistry::open(other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an MLflow database"), std::string::npos)
      << r.status().message();
  r = ModelRegistry::open("sqlite:///" + other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an MLflow database"), std::string::npos);

  const std::string fake = (dir / "fake.db").string();
  std::ofstream(fake, std::ios::binary)
      << std::string("SQLite format 3\0", 16) << std::string(4000, '\x7f');
  r = ModelRegistry::open(fake);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(fake), std::string::npos) << r.status().message();

  r = ModelRegistry::open("sqlite:///" + (dir / "missing.db").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a SQLite database"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace r1
