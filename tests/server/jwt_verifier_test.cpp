// JWT verification: each algorithm with keys and signatures made here by
// OpenSSL's signing side (the verifier only verifies), and every way a token
// must be refused: alg none, algorithm confusion (HS256 keyed with the RSA
// public key), another alg than the pinned one, expired, not yet valid,
// wrong iss / aud, bad signature, malformed parts. Plus base64url against
// RFC 4648's test vectors, and the authenticator's JWT and forwarded-header
// paths.
#include <gtest/gtest.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "server/auth/address_range.h"
#include "server/auth/authenticator.h"
#include "server/auth/jwt_verifier.h"

namespace r1 {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "a-shared-secret-of-at-least-32-bytes!!";

// base64url written independently of the code under test (plain base64,
// then the URL alphabet, padding stripped).
std::string b64url(const std::string& bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

struct KeyPair {
  EVP_PKEY* key = nullptr;
  std::string public_pem;
  ~KeyPair() { EVP_PKEY_free(key); }
};

std::unique_ptr<KeyPair> make_key(bool rsa) {
  auto kp = std::make_unique<KeyPair>();
  kp->key = rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, kp->key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  kp->public_pem.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  return kp;
}

std::string sign_with(EVP_PKEY* key, const std::string& input, bool ecdsa) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (!ecdsa) return sig;
  // DER -> R || S, 32 bytes each, as JWS wants.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(es);
  return raw;
}

std::string hmac(const std::string& key, const std::string& input) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

json claims(json extra = json::object()) {
  json c = {{"sub", "user-42"}, {"exp", kNow + 600}, {"roles", {"developer"}}};
  for (auto& [k, v] : extra.items()) c[k] = v;
  return c;
}

// header.payload signed by `alg` ("none" = empty signature).
std::string token(const std::string& alg, const json& payload, EVP_PKEY* key = nullptr,
                  const std::string& secret = kSecret, json header_extra = json::object()) {
  json header = {{"alg", alg}, {"typ", "JWT"}};
  for (auto& [k, v] : header_extra.items()) header[k] = v;
  const std::string input = b64url(header.dump()) + "." + b64url(payload.dump());
  std::string sig;
  if (alg == "HS256") sig = hmac(secret, input);
  if (alg == "RS256") sig = sign_with(key, input, false);
  if (alg == "ES256") sig = sign_with(key, input, true);
  return input + "." + b64url(sig);
}

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("r1-jwt-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    rsa_ = make_key(true);
    ec_ = make_key(false);
    write("secret", kSecret + "\n");
    write("rsa.pem", rsa_->public_pem);
    write("ec.pem", ec_->public_pem);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  std::unique_ptr<JwtVerifier> verifier(JwtAlgorithm alg, JwtConfig c = {}) {
    c.algorithm = alg;
    c.key_file = (dir_ / (alg == JwtAlgorithm::kHS256   ? "secret"
                          : alg == JwtAlgorithm::kRS256 ? "rsa.pem"
                                                        : "ec.pem"))
                     .string();
    auto v = JwtVerifier::create(c);
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? std::move(v).value() : nullptr;
  }
  fs::path dir_;
  std::unique_ptr<KeyPair> rsa_, ec_;
};

TEST(Base64UrlTest, Rfc4648VectorsAndStrictDecoding) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url_encode(plain), encoded);
    std::string back;
    ASSERT_TRUE(base64url_decode(encoded, &back)) << encoded;
    EXPECT_EQ(back, plain);
  }
  std::string out;
  EXPECT_FALSE(base64url_decode("Zm9v+", &out));  // the standard alphabet's +
  EXPECT_FALSE(base64url_decode("Zm9v=", &out));  // padding
  EXPECT_FALSE(base64url_decode("Z", &out));      // no byte ends after 6 bits
  EXPECT_FALSE(base64url_decode("Zh", &out));     // non-zero leftover bits
}

TEST_F(JwtTest, EachAlgorithmAcceptsItsOwnTokens) {
  auto hs = verifier(JwtAlgorithm::kHS256);
  auto rs = verifier(JwtAlgorithm::kRS256);
  auto es = verifier(JwtAlgorithm::kES256);
  const std::vector<std::pair<JwtVerifier*, std::string>> cases = {
      {hs.get(), token("HS256", claims())},
      {rs.get(), token("RS256", claims(), rsa_->key)},
      {es.get(), token("ES256", claims(), ec_->key)}};
  for (const auto& [v, t] : cases) {
    auto id = v->verify(t, kNow);
    ASSERT_TRUE(id.ok()) << id.status().message();
    EXPECT_EQ(id->subject, "user-42");
    ASSERT_EQ(id->roles.size(), 1u);
    EXPECT_EQ(id->roles[0], Role::kDeveloper);
  }
}

TEST_F(JwtTest, AlgNoneAndOtherAlgorithmsAreRefused) {
  auto rs = verifier(JwtAlgorithm::kRS256);
  EXPECT_FALSE(rs->verify(token("none", claims()), kNow).ok());
  // alg none with the RS256 signature of another token attached.
  const std::string good = token("RS256", claims(), rsa_->key);
  const std::string none_prefix = token("none", claims());
  EXPECT_FALSE(rs->verify(none_prefix + good.substr(good.rfind('.') + 1), kNow).ok());
  EXPECT_FALSE(rs->verify(token("ES256", claims(), ec_->key), kNow).ok());
  EXPECT_FALSE(rs->verify(token("RS512", claims(), rsa_->key), kNow).ok());
  auto es = verifier(JwtAlgorithm::kES256);
  EXPECT_FALSE(es->verify(token("RS256", claims(), rsa_->key), kNow).ok());
}

TEST_F(JwtTest, AlgorithmConfusionHs256KeyedWithThePublicKeyIsRefused) {
  auto rs = verifier(JwtAlgorithm::kRS256);
  // The attack: the server's public key (known to all) as an HMAC secret.
  const std::string forged = token("HS256", claims(), nullptr, rsa_->public_pem);
  auto r = rs->verify(forged, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("algorithm"), std::string::npos);
}

TEST_F(JwtTest, TimeClaimsHonourTheLeeway) {
  JwtConfig c;
  c.leeway_seconds = 30;
  auto hs = verifier(JwtAlgorithm::kHS256, c);
  const std::string expired = token("HS256", claims({{"exp", kNow - 31}}));
  EXPECT_NE(hs->verify(expired, kNow).status().message().find("expired"), std::string::npos);
  EXPECT_TRUE(hs->verify(token("HS256", claims({{"exp", kNow - 29}})), kNow).ok());
  const std::string early = token("HS256", claims({{"nbf", kNow + 31}}));
  EXPECT_NE(hs->verify(early, kNow).status().message().find("not valid yet"), std::string::npos);
  EXPECT_TRUE(hs->verify(token("HS256", claims({{"nbf", kNow + 29}})), kNow).ok());
  json no_exp = claims();
  no_exp.erase("exp");
  EXPECT_FALSE(hs->verify(token("HS256", no_exp), kNow).ok());
  EXPECT_FALSE(hs->verify(token("HS256", claims({{"exp", "tomorrow"}})), kNow).ok());
}

TEST_F(JwtTest, IssuerAndAudienceWhenConfigured) {
  JwtConfig c;
  c.issuer = "https://idp.example";
  c.audience = "r1serve";
  auto rs = verifier(JwtAlgorithm::kRS256, c);
  const json good = claims({{"iss", "https://idp.example"}, {"aud", "r1serve"}});
  EXPECT_TRUE(rs->verify(token("RS256", good, rsa_->key), kNow).ok());
  json listed = good;
  listed["aud"] = {"other", "r1serve"};
  EXPECT_TRUE(rs->verify(token("RS256", listed, rsa_->key), kNow).ok());
  json wrong_aud = good;
  wrong_aud["aud"] = "other";
  EXPECT_FALSE(rs->verify(token("RS256", wrong_aud, rsa_->key), kNow).ok());
  json wrong_iss = good;
  wrong_iss["iss"] = "https://evil.example";
  EXPECT_FALSE(rs->verify(token("RS256", wrong_iss, rsa_->key), kNow).ok());
  json no_aud = good;
  no_aud.erase("aud");
  EXPECT_FALSE(rs->verify(token("RS256", no_aud, rsa_->key), kNow).ok());
}

TEST_F(JwtTest, TamperedTokensAreRefused) {
  auto es = verifier(JwtAlgorithm::kES256);
  const std::string t = token("ES256", claims(), ec_->key);
  ASSERT_TRUE(es->verify(t, kNow).ok());
  // Another payload under the original signature.
  const std::string other = token("ES256", claims({{"sub", "admin"}}), ec_->key);
  const std::string spliced = other.substr(0, other.rfind('.')) + t.substr(t.rfind('.'));
  EXPECT_FALSE(es->verify(spliced, kNow).ok());
  // One signature character changed.
  std::string flipped = t;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(es->verify(flipped, kNow).ok());
  // Signed by another key of the right type.
  auto stranger = make_key(false);
  EXPECT_FALSE(es->verify(token("ES256", claims(), stranger->key), kNow).ok());
  auto hs = verifier(JwtAlgorithm::kHS256);
  EXPECT_FALSE(
      hs->verify(token("HS256", claims(), nullptr, "another-secret-of-32-bytes-or-more!!"), kNow)
          .ok());
  for (const std::string& bad :
       std::vector<std::string>{"", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", t + "x"}) {
    EXPECT_FALSE(es->verify(bad, kNow).ok()) << bad;
  }
  EXPECT_FALSE(
      es->verify(token("ES256", claims(), ec_->key, kSecret, {{"crit", {"exp"}}}), kNow).ok());
}

TEST_F(JwtTest, RolesFromAConfiguredClaim) {
  JwtConfig c;
  c.roles_claim = "realm_access.roles";
  auto hs = verifier(JwtAlgorithm::kHS256, c);
  auto id = hs->verify(
      token("HS256", claims({{"realm_access", {{"roles", {"operator", "auditor", "unknown"}}}}})),
      kNow);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->roles, (std::vector<Role>{Role::kOperator, Role::kAuditor}));
  JwtConfig scope;
  scope.roles_claim = "scope";
  auto hs2 = verifier(JwtAlgorithm::kHS256, scope);
  id = hs2->verify(token("HS256", claims({{"scope", "developer auditor"}})), kNow);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->roles, (std::vector<Role>{Role::kDeveloper, Role::kAuditor}));
  // No roles claim: a valid identity with no roles (403 on every route).
  id = hs->verify(token("HS256", claims()), kNow);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->roles.empty());
}

TEST_F(JwtTest, KeysOfTheWrongKindAreRefusedAtStart) {
  JwtConfig c;
  c.algorithm = JwtAlgorithm::kRS256;
  c.key_file = (dir_ / "ec.pem").string();
  EXPECT_FALSE(JwtVerifier::create(c).ok());
  c.algorithm = JwtAlgorithm::kES256;
  c.key_file = (dir_ / "rsa.pem").string();
  EXPECT_FALSE(JwtVerifier::create(c).ok());
  c.algorithm = JwtAlgorithm::kHS256;
  c.key_file = write("short", "too-short");
  EXPECT_FALSE(JwtVerifier::create(c).ok());
  c.algorithm = JwtAlgorithm::kRS256;
  c.key_file = write("garbage.pem", "not a key");
  EXPECT_FALSE(JwtVerifier::create(c).ok());
  c.key_file = (dir_ / "missing.pem").string();
  EXPECT_FALSE(JwtVerifier::create(c).ok());
}

HttpRequest request(const std::string& peer, std::multimap<std::string, std::string> headers) {
  HttpRequest r;
  r.remote_addr = peer;
  r.headers = std::move(headers);
  return r;
}

TEST_F(JwtTest, AuthenticatorTakesJwtsAndTrustedForwardedNames) {
  AuthConfig c;
  JwtConfig j;
  j.algorithm = JwtAlgorithm::kRS256;
  j.key_file = (dir_ / "rsa.pem").string();
  c.jwt = j;
  ForwardedIdentityConfig f;
  f.principal_header = "X-Consumer-Username";
  f.roles_header = "X-Consumer-Roles";
  f.trusted_proxies = *AddressRange::parse_list("10.0.0.0/8, ::1");
  c.forwarded = f;
  c.default_limits.tokens_per_minute = 500;
  c.clock = [] { return kNow; };
  auto auth = Authenticator::create(c);
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  const Authenticator& a = **auth;

  const std::string t = token("RS256", claims(), rsa_->key);
  AuthDecision d =
      a.check(request("192.0.2.1", {{"Authorization", "Bearer " + t}}), {Role::kDeveloper});
  ASSERT_TRUE(d.principal);
  EXPECT_EQ(d.principal->id, "user-42");
  EXPECT_EQ(d.principal->source, "jwt");
  EXPECT_EQ(d.principal->limits.tokens_per_minute, 500);
  d = a.check(request("192.0.2.1", {{"Authorization", "Bearer " + t}}), {Role::kOperator});
  EXPECT_EQ(d.status, 403);
  d = a.check(
      request("192.0.2.1",
              {{"Authorization", "Bearer " + token("HS256", claims(), nullptr, rsa_->public_pem)}}),
      {Role::kDeveloper});
  EXPECT_EQ(d.status, 401);
  EXPECT_EQ(d.code, "invalid_token");

  // From the gateway: the forwarded name and roles.
  d = a.check(request("10.1.2.3", {{"x-consumer-username", "team-a"},
                                   {"X-Consumer-Roles", "developer, auditor"}}),
              {Role::kAuditor});
  ASSERT_TRUE(d.principal);
  EXPECT_EQ(d.principal->id, "team-a");
  EXPECT_EQ(d.principal->source, "forwarded");
  d = a.check(request("::ffff:10.9.9.9",
                      {{"X-Consumer-Username", "team-b"}, {"X-Consumer-Roles", "developer"}}),
              {Role::kDeveloper});
  EXPECT_TRUE(d.principal);
  // From anyone else the header is ignored: no credentials, 401.
  d = a.check(
      request("192.0.2.1", {{"X-Consumer-Username", "team-a"}, {"X-Consumer-Roles", "operator"}}),
      {Role::kOperator});
  EXPECT_EQ(d.status, 401);
}

TEST(AddressRangeTest, Ipv4Ipv6AndMappedAddresses) {
  auto r = AddressRange::parse("10.0.0.0/8");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->contains("10.255.0.1"));
  EXPECT_TRUE(r->contains("::ffff:10.0.0.1"));
  EXPECT_FALSE(r->contains("11.0.0.1"));
  EXPECT_FALSE(r->contains("not an address"));
  auto odd = AddressRange::parse("192.168.4.0/22");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->contains("192.168.7.255"));
  EXPECT_FALSE(odd->contains("192.168.8.0"));
  auto six = AddressRange::parse("fd00::/8");
  ASSERT_TRUE(six.ok());
  EXPECT_TRUE(six->contains("fd12::1"));
  EXPECT_FALSE(six->contains("fe80::1"));
  EXPECT_FALSE(six->contains("10.0.0.1"));
  EXPECT_TRUE(AddressRange::parse("::1")->contains("::1"));
  EXPECT_FALSE(AddressRange::parse("10.0.0.0/33").ok());
  EXPECT_FALSE(AddressRange::parse("10.0.0/8").ok());
  EXPECT_FALSE(AddressRange::parse_list("127.0.0.1, bogus").ok());
  EXPECT_TRUE(AddressRange::parse_list("")->empty());
}

}  // namespace
}  // namespace r1
