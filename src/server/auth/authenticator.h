// Who is calling, and may they: Bearer credentials checked against the API
// key store, then the route's role. Reloadable (SIGHUP) without dropping
// requests: a reload swaps in a new store; requests already checked keep
// going, a request checked after the swap sees the new keys (a revoked key
// is refused from then on). Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/auth/api_key_store.h"
#include "server/auth/role.h"
#include "server/http/http_server.h"

namespace r1 {

struct Principal {
  std::string id;  // the key's id: logged, never secret
  std::vector<Role> roles;
  PrincipalLimits limits;
  bool has(Role role) const;
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
  // Loads the key file; it is read again by reload().
  static Result<std::unique_ptr<Authenticator>> with_key_file(const std::string& path);

  // Re-reads the key file. On an error the old keys stay in force.
  Status reload();

  // `needed`: the role the route requires; nullopt = any valid credential.
  AuthDecision check(const HttpRequest& req, std::optional<Role> needed) const;

  size_t n_keys() const;

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  std::string path_;
  mutable std::mutex mu_;                    // guards keys_ (the pointer, not the store)
  std::shared_ptr<const ApiKeyStore> keys_;  // replaced whole on reload
};

// The response for a refused request: OpenAI-shaped body, and for 401 a
// WWW-Authenticate header.
HttpResponse auth_error_response(const AuthDecision& decision);

}  // namespace r1
