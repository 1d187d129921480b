// Who is calling, and may they. Three sources of identity, each optional:
// - API keys (`Authorization: Bearer <key>`) checked against the key file;
// - JWTs (`Authorization: Bearer <header.payload.signature>`) checked
//   against a pinned algorithm and key (see JwtVerifier);
// - a principal header forwarded by a trusted gateway (Kong, Envoy), used
//   only when the peer address is in the configured proxy ranges; from any
//   other peer the header is ignored, so it cannot be forged by a client.
// Then the route's role. Reloadable (SIGHUP) without dropping requests: a
// reload swaps in new keys and a new JWT key; requests already checked keep
// going, a request checked after the swap sees the new ones (a revoked key
// is refused from then on). Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/auth/address_range.h"
#include "server/auth/api_key_store.h"
#include "server/auth/jwt_verifier.h"
#include "server/auth/role.h"
#include "server/http/http_server.h"

namespace r1 {

struct Principal {
  std::string id;      // key id, JWT subject or forwarded name: logged, never secret
  std::string source;  // "api_key", "jwt" or "forwarded"
  std::vector<Role> roles;
  PrincipalLimits limits;
  std::vector<std::string> models;  // the models it may use; empty: all
  bool has(Role role) const;
};

struct ForwardedIdentityConfig {
  std::string principal_header;  // e.g. "X-Consumer-Username" (Kong)
  std::string roles_header;      // "" = every forwarded principal gets default_roles
  std::vector<Role> default_roles{Role::kDeveloper};
  std::vector<AddressRange> trusted_proxies;  // peers allowed to set the headers
};

struct AuthConfig {
  std::string api_keys_file;  // "" = no API keys
  std::optional<JwtConfig> jwt;
  std::optional<ForwardedIdentityConfig> forwarded;
  // Limits for principals not in the key file (JWT subjects, forwarded).
  PrincipalLimits default_limits;
  std::function<int64_t()> clock;  // unix seconds for JWT checks; unset = the system clock
};

// The outcome of a check: a principal, or an HTTP status (401 missing or
// bad credentials, 403 missing role) with a message and OpenAI-style code.
struct AuthDecision {
  std::optional<Principal> principal;
  int status = 0;
  std::string message;
  std::string code;
};

class Authenticator {
 public:
  // Loads the key file and JWT key; both are read again by reload().
  static Result<std::unique_ptr<Authenticator>> create(AuthConfig config);
  static Result<std::unique_ptr<Authenticator>> with_key_file(const std::string& path);

  // Re-reads the key file and JWT key. On an error the old ones stay in force.
  Status reload();

  // `allowed`: the roles that may use the route (any one suffices); empty =
  // any valid credential.
  AuthDecision check(const HttpRequest& req, const std::vector<Role>& allowed) const;

  size_t n_keys() const;
  const AuthConfig& config() const { return config_; }

 private:
  explicit Authenticator(AuthConfig config) : config_(std::move(config)) {}
  AuthDecision identify(const HttpRequest& req) const;

  AuthConfig config_;
  mutable std::mutex mu_;  // guards the two pointers below (not what they point at)
  std::shared_ptr<const ApiKeyStore> keys_;
  std::shared_ptr<const JwtVerifier> jwt_;
};

// The response for a refused request: OpenAI-shaped body, and for 401 a
// WWW-Authenticate header.
HttpResponse auth_error_response(const AuthDecision& decision);

}  // namespace r1
