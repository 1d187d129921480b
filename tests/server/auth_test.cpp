// API keys and the authenticator: the key file's checks, lookup by hash,
// 401 / 403 decisions, and reload (a revoked key is refused after SIGHUP's
// reload; a broken file leaves the old keys in force).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/auth/api_key_store.h"
#include "server/auth/authenticator.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

TEST(ApiKeyStoreTest, Sha256MatchesTheStandardVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

std::string key_file(const std::string& extra = "") {
  return "keys:\n"
         "  - id: alice\n"
         "    sha256: " +
         sha256_hex("sk-alice") +
         "\n"
         "    roles: [developer]\n"
         "    requests_per_second: 2.5\n"
         "    tokens_per_minute: 1000\n"
         "    max_concurrent: 3\n"
         "  - id: audit\n"
         "    sha256: " +
         sha256_hex("sk-audit") +
         "\n"
         "    roles: [auditor, operator]\n" +
         extra;
}

TEST(ApiKeyStoreTest, FindsKeysByHashOnly) {
  auto store = ApiKeyStore::parse(key_file(), "test");
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->size(), 2u);
  const ApiKeyEntry* a = store->find("sk-alice");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id, "alice");
  EXPECT_EQ(a->limits.requests_per_second, 2.5);
  EXPECT_EQ(a->limits.tokens_per_minute, 1000);
  EXPECT_EQ(a->limits.max_concurrent, 3);
  EXPECT_EQ(store->find("sk-alic"), nullptr);
  EXPECT_EQ(store->find(""), nullptr);
  // The hash itself is not a key.
  EXPECT_EQ(store->find(sha256_hex("sk-alice")), nullptr);
}

TEST(ApiKeyStoreTest, BadFilesAreRefusedWithTheReason) {
  struct Case {
    std::string text, expect;
  };
  const std::string h = sha256_hex("x");
  for (const Case& c : std::vector<Case>{
           {"keys: 3\n", "list under `keys:`"},
           {"keys: []\nextra: 1\n", "unknown field 'extra'"},
           {"keys:\n  - id: a\n    sha256: 1234\n", "64 hex digits"},
           {"keys:\n  - id: a\n    sha256: " + h + "\n    roles: [admin]\n",
            "unknown role 'admin'"},
           {"keys:\n  - id: a\n    sha256: " + h + "\n    colour: red\n", "unknown field 'colour'"},
           {"keys:\n  - sha256: " + h + "\n", "id is required"},
           {"keys:\n  - id: a\n", "sha256 is required"},
           {"keys:\n  - id: a\n    sha256: " + h + "\n  - id: a\n    sha256: " + h + "\n",
            "duplicate id 'a'"},
           {"keys:\n  - id: a\n    sha256: " + h + "\n    max_concurrent: -1\n", "not negative"},
           {"keys:\n  - id: a\n    sha256: " + h + "\n    requests_per_second: .nan\n", "finite"},
           {"keys: [\n", "line"},
       }) {
    auto s = ApiKeyStore::parse(c.text, "f.yaml");
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.expect), std::string::npos)
        << c.text << " -> " << s.status().message();
    EXPECT_NE(s.status().message().find("f.yaml"), std::string::npos);
  }
}

HttpRequest with_auth(const std::string& header) {
  HttpRequest r;
  if (!header.empty()) r.headers.emplace("Authorization", header);
  return r;
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ =
        (fs::temp_directory_path() / ("r1-keys-" + std::to_string(getpid()) + ".yaml")).string();
    std::ofstream(path_) << key_file();
  }
  void TearDown() override { fs::remove(path_); }
  std::string path_;
};

TEST_F(AuthenticatorTest, DecidesOnCredentialsThenRole) {
  auto auth = Authenticator::with_key_file(path_);
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  const Authenticator& a = **auth;

  AuthDecision none = a.check(with_auth(""), {Role::kDeveloper});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.code, "missing_api_key");
  EXPECT_EQ(a.check(with_auth("Basic c2stYWxpY2U="), {Role::kDeveloper}).status, 401);
  AuthDecision wrong = a.check(with_auth("Bearer sk-mallory"), {Role::kDeveloper});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.code, "invalid_api_key");

  AuthDecision ok = a.check(with_auth("bearer  sk-alice "), {Role::kDeveloper});
  ASSERT_TRUE(ok.principal.has_value());
  EXPECT_EQ(ok.principal->id, "alice");

  AuthDecision forbidden = a.check(with_auth("Bearer sk-alice"), {Role::kAuditor});
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_FALSE(forbidden.principal.has_value());
  EXPECT_TRUE(a.check(with_auth("Bearer sk-audit"), {Role::kAuditor}).principal.has_value());
  EXPECT_TRUE(a.check(with_auth("Bearer sk-audit"), {}).principal.has_value());

  HttpResponse r401 = auth_error_response(wrong);
  EXPECT_EQ(r401.status, 401);
  EXPECT_NE(r401.headers.at("WWW-Authenticate").find("Bearer"), std::string::npos);
  EXPECT_NE(r401.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(r401.body.find("sk-mallory"), std::string::npos);  // never echoes a secret
  HttpResponse r403 = auth_error_response(forbidden);
  EXPECT_EQ(r403.status, 403);
  EXPECT_EQ(r403.headers.count("WWW-Authenticate"), 0u);
}

TEST_F(AuthenticatorTest, ReloadRevokesAndABrokenFileKeepsTheOldKeys) {
  auto auth = Authenticator::with_key_file(path_);
  ASSERT_TRUE(auth.ok());
  Authenticator& a = **auth;
  ASSERT_TRUE(a.check(with_auth("Bearer sk-alice"), {Role::kDeveloper}).principal);

  std::ofstream(path_) << "keys: [\n";  // broken
  EXPECT_FALSE(a.reload().ok());
  EXPECT_TRUE(a.check(with_auth("Bearer sk-alice"), {Role::kDeveloper}).principal);

  std::ofstream(path_) << "keys:\n  - id: bob\n    sha256: " + sha256_hex("sk-bob") +
                              "\n    roles: [developer]\n";
  ASSERT_TRUE(a.reload().ok());
  EXPECT_EQ(a.check(with_auth("Bearer sk-alice"), {Role::kDeveloper}).status, 401);
  EXPECT_TRUE(a.check(with_auth("Bearer sk-bob"), {Role::kDeveloper}).principal);
}

}  // namespace
}  // namespace r1
