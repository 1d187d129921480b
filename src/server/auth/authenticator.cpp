#include "server/auth/authenticator.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <nlohmann/json.hpp>

namespace r1 {

namespace {

// The credentials of "Authorization: Bearer <token>"; empty when absent.
std::string bearer_token(const HttpRequest& req) {
  const std::string h = req.header("Authorization");
  if (h.size() < 7) return "";
  std::string scheme = h.substr(0, 7);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer ") return "";
  std::string token = h.substr(7);
  token.erase(0, token.find_first_not_of(' '));
  while (!token.empty() && token.back() == ' ') token.pop_back();
  return token;
}

AuthDecision refuse(int status, std::string message, std::string code) {
  AuthDecision d;
  d.status = status;
  d.message = std::move(message);
  d.code = std::move(code);
  return d;
}

AuthDecision accept(Principal p) {
  AuthDecision d;
  d.principal = std::move(p);
  return d;
}

// Roles named in a forwarded header: comma- or space-separated.
std::vector<Role> roles_in(const std::string& text) {
  std::vector<Role> roles;
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c == ',' || c == ' ') {
      if (auto r = parse_role(word)) roles.push_back(*r);
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  return roles;
}

int64_t system_unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Principal::has(Role role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

Result<std::unique_ptr<Authenticator>> Authenticator::create(AuthConfig config) {
  if (config.api_keys_file.empty() && !config.jwt && !config.forwarded) {
    return invalid_argument("authentication needs API keys, a JWT key or a forwarded header");
  }
  if (config.forwarded && config.forwarded->principal_header.empty()) {
    return invalid_argument("a forwarded identity needs the principal header's name");
  }
  if (!config.clock) config.clock = system_unix_seconds;
  auto a = std::unique_ptr<Authenticator>(new Authenticator(std::move(config)));
  R1_RETURN_IF_ERROR(a->reload());
  return a;
}

Result<std::unique_ptr<Authenticator>> Authenticator::with_key_file(const std::string& path) {
  AuthConfig c;
  c.api_keys_file = path;
  return create(std::move(c));
}

Status Authenticator::reload() {
  std::shared_ptr<const ApiKeyStore> keys;
  std::shared_ptr<const JwtVerifier> jwt;
  if (!config_.api_keys_file.empty()) {
    R1_ASSIGN_OR_RETURN(ApiKeyStore store, ApiKeyStore::load(config_.api_keys_file));
    keys = std::make_shared<const ApiKeyStore>(std::move(store));
  }
  if (config_.jwt) {
    R1_ASSIGN_OR_RETURN(std::unique_ptr<JwtVerifier> v, JwtVerifier::create(*config_.jwt));
    jwt = std::move(v);
  }
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(keys);
  jwt_ = std::move(jwt);
  return ok_status();
}

size_t Authenticator::n_keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_ ? keys_->size() : 0;
}

AuthDecision Authenticator::identify(const HttpRequest& req) const {
  if (config_.forwarded && any_contains(config_.forwarded->trusted_proxies, req.remote_addr)) {
    const ForwardedIdentityConfig& f = *config_.forwarded;
    const std::string name = req.header(f.principal_header);
    if (!name.empty()) {
      if (name.size() > 256)
        return refuse(401, "forwarded principal too long", "invalid_principal");
      Principal p{name, "forwarded", f.default_roles, config_.default_limits, {}};
      if (!f.roles_header.empty()) p.roles = roles_in(req.header(f.roles_header));
      return accept(std::move(p));
    }
  }
  const std::string token = bearer_token(req);
  if (token.empty()) {
    return refuse(401, "missing credentials: send Authorization: Bearer <API key or token>",
                  "missing_api_key");
  }
  std::shared_ptr<const ApiKeyStore> keys;
  std::shared_ptr<const JwtVerifier> jwt;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys = keys_;
    jwt = jwt_;
  }
  if (jwt && looks_like_jwt(token)) {
    auto id = jwt->verify(token, config_.clock());
    if (!id.ok()) return refuse(401, "invalid token: " + id.status().message(), "invalid_token");
    return accept(Principal{id->subject, "jwt", id->roles, config_.default_limits, {}});
  }
  const ApiKeyEntry* e = keys ? keys->find(token) : nullptr;
  if (e == nullptr) return refuse(401, "invalid API key", "invalid_api_key");
  return accept(Principal{e->id, "api_key", e->roles, e->limits, e->models});
}

AuthDecision Authenticator::check(const HttpRequest& req, const std::vector<Role>& allowed) const {
  AuthDecision d = identify(req);
  if (!d.principal || allowed.empty()) return d;
  for (Role r : allowed) {
    if (d.principal->has(r)) return d;
  }
  std::string names;
  for (Role r : allowed) names += (names.empty() ? "" : " or ") + std::string(role_name(r));
  return refuse(403,
                "principal '" + d.principal->id + "' lacks the " + names + " role this route needs",
                "insufficient_role");
}

HttpResponse auth_error_response(const AuthDecision& d) {
  HttpResponse res;
  res.status = d.status;
  const nlohmann::json body = {
      {"error",
       {{"message", d.message},
        {"type", d.status == 401 ? "authentication_error" : "permission_error"},
        {"param", nullptr},
        {"code", d.code}}}};
  res.body = body.dump();
  if (d.status == 401) {
    const bool bad = d.code == "invalid_api_key" || d.code == "invalid_token";
    res.headers["WWW-Authenticate"] =
        "Bearer realm=\"r1serve\"" + std::string(bad ? ", error=\"invalid_token\"" : "");
  }
  return res;
}

}  // namespace r1
