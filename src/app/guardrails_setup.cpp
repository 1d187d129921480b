#include "app/guardrails_setup.h"

#include "app/config_layers.h"
#include "obs/log.h"
#include "server/ops/memory_cache_store.h"
#include "server/ops/redis_cache_store.h"

namespace r1 {

namespace {

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Result<std::vector<Role>> parse_roles(const std::string& text, const std::string& flag) {
  std::vector<Role> roles;
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c != ',' && c != ' ') {
      word.push_back(c);
      continue;
    }
    if (word.empty()) continue;
    auto r = parse_role(word);
    if (!r) return invalid_argument(flag + ": unknown role '" + word + "'");
    roles.push_back(*r);
    word.clear();
  }
  return roles;
}

Result<AuthConfig> auth_config(const GuardrailArgs& a) {
  AuthConfig c;
  c.api_keys_file = a.api_keys;
  c.default_limits.requests_per_second = a.default_requests_per_second;
  c.default_limits.tokens_per_minute = a.default_tokens_per_minute;
  c.default_limits.max_concurrent = a.default_max_concurrent;
  if (!a.jwt_algorithm.empty()) {
    JwtConfig j;
    R1_ASSIGN_OR_RETURN(j.algorithm, parse_jwt_algorithm(a.jwt_algorithm));
    if (a.jwt_key.empty()) return invalid_argument("--jwt-algorithm needs --jwt-key FILE");
    j.key_file = a.jwt_key;
    j.issuer = a.jwt_issuer;
    j.audience = a.jwt_audience;
    j.leeway_seconds = a.jwt_leeway;
    j.roles_claim = a.jwt_roles_claim;
    j.subject_claim = a.jwt_subject_claim;
    c.jwt = j;
  } else if (!a.jwt_key.empty()) {
    return invalid_argument("--jwt-key needs --jwt-algorithm (HS256, RS256 or ES256)");
  }
  if (!a.trusted_principal_header.empty()) {
    ForwardedIdentityConfig f;
    f.principal_header = a.trusted_principal_header;
    f.roles_header = a.trusted_roles_header;
    R1_ASSIGN_OR_RETURN(f.default_roles,
                        parse_roles(a.trusted_default_roles, "--trusted-default-roles"));
    R1_ASSIGN_OR_RETURN(f.trusted_proxies, AddressRange::parse_list(a.trusted_proxies));
    if (f.trusted_proxies.empty()) {
      return invalid_argument(
          "--trusted-principal-header needs --trusted-proxies (the gateway's "
          "addresses)");
    }
    c.forwarded = f;
  }
  return c;
}

}  // namespace

void add_guardrail_options(CLI::App* cmd, GuardrailArgs* a) {
  const std::string auth = "Authentication";
  cmd->add_option("--api-keys", a->api_keys,
                  "YAML key file (ids, SHA-256 hashes, roles, limits); SIGHUP reloads it")
      ->group(auth);
  cmd->add_flag("--auth-disabled", a->auth_disabled,
                "serve without authentication on purpose (required for a non-loopback --host "
                "without credentials configured)")
      ->group(auth);
  cmd->add_flag("--auth-protect-ops", a->auth_protect_ops,
                "/health, /ready and /metrics need credentials too")
      ->group(auth);
  cmd->add_option("--jwt-algorithm", a->jwt_algorithm,
                  "accept JWTs signed with this algorithm only: HS256, RS256 or ES256")
      ->check(CLI::IsMember({"", "HS256", "RS256", "ES256"}))
      ->group(auth);
  cmd->add_option("--jwt-key", a->jwt_key,
                  "HS256: file holding the shared secret; RS256/ES256: PEM public key file "
                  "(SIGHUP reloads it)")
      ->group(auth);
  cmd->add_option("--jwt-issuer", a->jwt_issuer, "required `iss` claim; empty = not checked")
      ->group(auth);
  cmd->add_option("--jwt-audience", a->jwt_audience, "required `aud` entry; empty = not checked")
      ->group(auth);
  cmd->add_option("--jwt-leeway", a->jwt_leeway, "clock skew allowed on exp and nbf, seconds")
      ->check(CLI::Range(int64_t{0}, int64_t{3600}))
      ->group(auth);
  cmd->add_option("--jwt-roles-claim", a->jwt_roles_claim,
                  "claim holding the roles (a list or a space-separated string; dotted path "
                  "for nested claims, e.g. realm_access.roles)")
      ->group(auth);
  cmd->add_option("--jwt-subject-claim", a->jwt_subject_claim, "claim holding the principal id")
      ->group(auth);
  cmd->add_option("--trusted-principal-header", a->trusted_principal_header,
                  "behind a gateway: take the principal from this header (e.g. "
                  "X-Consumer-Username), only from --trusted-proxies")
      ->group(auth);
  cmd->add_option("--trusted-roles-header", a->trusted_roles_header,
                  "header with the forwarded principal's roles (comma-separated); empty = "
                  "--trusted-default-roles")
      ->group(auth);
  cmd->add_option("--trusted-proxies", a->trusted_proxies,
                  "comma-separated addresses or CIDR ranges of the gateways trusted to "
                  "forward a principal")
      ->group(auth);
  cmd->add_option("--trusted-default-roles", a->trusted_default_roles,
                  "roles of a forwarded principal when no roles header is configured")
      ->group(auth);

  const std::string limits = "Limits";
  cmd->add_option("--max-concurrent-requests", a->max_concurrent_requests,
                  "authenticated inference requests in flight across all principals before "
                  "429; 0 = no cap (per-key limits come from the key file)")
      ->check(CLI::Range(0, 1 << 20))
      ->group(limits);
  cmd->add_option("--default-requests-per-second", a->default_requests_per_second,
                  "limit of each JWT or forwarded principal; 0 = none")
      ->check(CLI::Range(0.0, 1e6))
      ->group(limits);
  cmd->add_option("--default-tokens-per-minute", a->default_tokens_per_minute,
                  "limit of each JWT or forwarded principal; 0 = none")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->group(limits);
  cmd->add_option("--default-max-concurrent", a->default_max_concurrent,
                  "limit of each JWT or forwarded principal; 0 = none")
      ->check(CLI::Range(0, 1 << 20))
      ->group(limits);

  const std::string audit = "Audit and usage";
  cmd->add_option("--audit-log", a->audit_log,
                  "hash-chained JSON-lines audit trail of calls and auth failures (check it "
                  "with `r1serve audit-verify`)")
      ->group(audit);
  cmd->add_option("--audit-max-bytes", a->audit_max_bytes,
                  "rotate the audit log past this size (FILE.1, FILE.2, ...); 0 = never")
      ->group(audit);
  cmd->add_flag("--audit-prompts", a->audit_prompts,
                "record each inference request's prompt in the audit trail")
      ->group(audit);
  cmd->add_option("--usage-file", a->usage_file,
                  "persist usage per principal and model here (synced before each answer); "
                  "empty = in memory only")
      ->group(audit);

  const std::string cache = "Response cache";
  cmd->add_option("--response-cache", a->response_cache,
                  "exact-match cache of deterministic answers: off, memory or redis")
      ->check(CLI::IsMember({"off", "memory", "redis"}))
      ->group(cache);
  cmd->add_option("--response-cache-ttl", a->response_cache_ttl, "seconds an answer is kept")
      ->check(CLI::Range(int64_t{1}, int64_t{365} * 86400))
      ->group(cache);
  cmd->add_option("--response-cache-max-bytes", a->response_cache_max_bytes,
                  "size of the in-process cache (LRU)")
      ->check(CLI::Range(int64_t{1} << 10, int64_t{1} << 40))
      ->group(cache);
  cmd->add_option("--response-cache-redis", a->response_cache_redis,
                  "redis://[:password@]host[:port][/db] or unix:/path/redis.sock")
      ->group(kSecretsGroup);
}

ServerGuardrails Guardrails::server() const {
  ServerGuardrails g;
  g.auth = auth.get();
  g.protect_ops_routes = protect_ops_routes;
  g.limiter = limiter.get();
  g.audit = audit.get();
  g.audit_prompts = audit_prompts;
  g.usage = usage.get();
  g.cache = cache.get();
  return g;
}

Result<Guardrails> make_guardrails(const GuardrailArgs& a, const std::string& host) {
  Guardrails g;
  const bool any_credentials =
      !a.api_keys.empty() || !a.jwt_algorithm.empty() || !a.trusted_principal_header.empty();
  if (any_credentials) {
    if (a.auth_disabled) {
      return invalid_argument(
          "--auth-disabled contradicts the credentials configured "
          "(--api-keys, --jwt-algorithm or --trusted-principal-header)");
    }
    R1_ASSIGN_OR_RETURN(AuthConfig c, auth_config(a));
    R1_ASSIGN_OR_RETURN(g.auth, Authenticator::create(std::move(c)));
    std::string what;
    if (!a.api_keys.empty()) {
      what += std::to_string(g.auth->n_keys()) + " API keys from " + a.api_keys;
    }
    if (!a.jwt_algorithm.empty()) what += (what.empty() ? "" : "; ") + a.jwt_algorithm + " JWTs";
    if (!a.trusted_principal_header.empty()) {
      what += (what.empty() ? "" : "; ") + std::string("principal header ") +
              a.trusted_principal_header + " from " + a.trusted_proxies;
    }
    log_info("authentication: " + what + " (SIGHUP reloads keys)");
  } else if (a.auth_disabled) {
    log_warning(
        "AUTHENTICATION IS DISABLED (--auth-disabled): every client may call every "
        "route with every role");
  } else if (!is_loopback(host)) {
    return invalid_argument("refusing to serve " + host +
                            " without authentication: give --api-keys FILE (or JWT or a "
                            "trusted gateway header), or --auth-disabled to serve it open on "
                            "purpose");
  } else {
    log_warning("AUTHENTICATION IS DISABLED: no credentials configured; serving " + host +
                " (loopback) open to every local client");
  }
  if (a.auth_protect_ops && !g.auth) {
    return invalid_argument("--auth-protect-ops needs credentials (--api-keys or JWT)");
  }
  g.protect_ops_routes = a.auth_protect_ops;
  if (g.auth) g.limiter = std::make_unique<RateLimiter>(a.max_concurrent_requests);
  if (!a.audit_log.empty()) {
    R1_ASSIGN_OR_RETURN(g.audit, AuditLog::open(a.audit_log, a.audit_max_bytes));
  }
  g.audit_prompts = a.audit_prompts;
  if (a.audit_prompts && a.audit_log.empty()) {
    return invalid_argument("--audit-prompts needs --audit-log");
  }
  R1_ASSIGN_OR_RETURN(g.usage, UsageLedger::open(a.usage_file));
  if (a.response_cache == "memory") {
    g.cache = std::make_unique<ResponseCache>(
        std::make_unique<MemoryCacheStore>(a.response_cache_max_bytes), a.response_cache_ttl);
  } else if (a.response_cache == "redis") {
    if (a.response_cache_redis.empty()) {
      return invalid_argument("--response-cache redis needs --response-cache-redis ADDRESS");
    }
    R1_ASSIGN_OR_RETURN(RedisAddress addr, parse_redis_address(a.response_cache_redis));
    log_info("response cache: Redis at " + addr.describe() + ", ttl " +
             std::to_string(a.response_cache_ttl) + " s");
    g.cache = std::make_unique<ResponseCache>(std::make_unique<RedisCacheStore>(addr),
                                              a.response_cache_ttl);
  } else if (!a.response_cache_redis.empty()) {
    return invalid_argument("--response-cache-redis needs --response-cache redis");
  }
  return g;
}

}  // namespace r1
