// JSON Web Tokens (RFC 7519) signed with HS256, RS256 or ES256, verified
// through OpenSSL. The algorithm is pinned by configuration: a token whose
// header names any other `alg` (including "none", or HS256 when the server
// holds an RS256 public key: the "algorithm confusion" attack) is refused
// before its signature is looked at. The key's type must match the pinned
// algorithm too (an RSA key for RS256, a P-256 key for ES256).
//
// Claims: `exp` is required, `nbf` honoured, both with a configurable clock
// skew; `iss` and `aud` checked when configured (`aud` may be a string or a
// list); the principal id comes from the subject claim and the roles from a
// configurable claim, a list of strings or a space-separated string, reached
// by a dotted path ("realm_access.roles" for Keycloak). Role names r1serve
// does not know are ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/auth/role.h"

struct evp_pkey_st;

namespace r1 {

enum class JwtAlgorithm { kHS256, kRS256, kES256 };

std::string_view jwt_algorithm_name(JwtAlgorithm alg);
Result<JwtAlgorithm> parse_jwt_algorithm(std::string_view name);

struct JwtConfig {
  JwtAlgorithm algorithm = JwtAlgorithm::kRS256;
  // HS256: the file holds the shared secret (a trailing newline is dropped).
  // RS256 / ES256: a PEM public key ("BEGIN PUBLIC KEY").
  std::string key_file;
  std::string issuer;    // "" = not checked
  std::string audience;  // "" = not checked
  int64_t leeway_seconds = 30;
  std::string roles_claim = "roles";
  std::string subject_claim = "sub";
};

struct JwtIdentity {
  std::string subject;
  std::vector<Role> roles;
};

class JwtVerifier {
 public:
  // Reads the key file. Errors name the file and what is wrong with it.
  static Result<std::unique_ptr<JwtVerifier>> create(const JwtConfig& config);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // The token's identity if its signature and claims hold at `now_unix`
  // (seconds since the epoch); otherwise an error whose message says why
  // (never echoing the token).
  Result<JwtIdentity> verify(std::string_view token, int64_t now_unix) const;

  const JwtConfig& config() const { return config_; }

 private:
  explicit JwtVerifier(JwtConfig config) : config_(std::move(config)) {}
  bool signature_holds(std::string_view signing_input, const std::string& signature) const;

  JwtConfig config_;
  std::string secret_;          // HS256
  evp_pkey_st* key_ = nullptr;  // RS256 / ES256 (an EVP_PKEY), owned
};

// True when `token` has the compact JWS shape (three base64url parts).
bool looks_like_jwt(std::string_view token);

// base64url without padding (RFC 4648 §5), as JWS uses. decode returns
// false on characters outside the alphabet or an impossible length.
std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string* out);

}  // namespace r1
