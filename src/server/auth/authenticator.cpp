#include "server/auth/authenticator.h"

#include <algorithm>
#include <cctype>

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

}  // namespace

bool Principal::has(Role role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

Result<std::unique_ptr<Authenticator>> Authenticator::with_key_file(const std::string& path) {
  auto a = std::unique_ptr<Authenticator>(new Authenticator(path));
  R1_RETURN_IF_ERROR(a->reload());
  return a;
}

Status Authenticator::reload() {
  R1_ASSIGN_OR_RETURN(ApiKeyStore store, ApiKeyStore::load(path_));
  auto fresh = std::make_shared<const ApiKeyStore>(std::move(store));
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(fresh);
  return ok_status();
}

size_t Authenticator::n_keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_ ? keys_->size() : 0;
}

AuthDecision Authenticator::check(const HttpRequest& req, std::optional<Role> needed) const {
  const std::string token = bearer_token(req);
  if (token.empty()) {
    return refuse(401, "missing credentials: send Authorization: Bearer <API key>",
                  "missing_api_key");
  }
  std::shared_ptr<const ApiKeyStore> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys = keys_;
  }
  const ApiKeyEntry* e = keys ? keys->find(token) : nullptr;
  if (e == nullptr) return refuse(401, "invalid API key", "invalid_api_key");
  Principal p{e->id, e->roles, e->limits};
  if (needed && !p.has(*needed)) {
    return refuse(403,
                  "principal '" + p.id + "' lacks the " + std::string(role_name(*needed)) +
                      " role this route needs",
                  "insufficient_role");
  }
  AuthDecision d;
  d.principal = std::move(p);
  return d;
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
    res.headers["WWW-Authenticate"] =
        "Bearer realm=\"r1serve\"" +
        std::string(d.code == "invalid_api_key" ? ", error=\"invalid_token\"" : "");
  }
  return res;
}

}  // namespace r1
