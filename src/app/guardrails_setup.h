// The serve command's guardrail settings (authentication by API keys, JWT or
// a trusted gateway's header; limits; audit trail; usage metering; response
// cache) as CLI options, and the objects they build for the server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/openai_server.h"
#include "server/ops/audit_log.h"
#include "server/ops/response_cache.h"
#include "server/ops/usage_ledger.h"

namespace r1 {

struct GuardrailArgs {
  std::string api_keys;
  bool auth_disabled = false;
  bool auth_protect_ops = false;
  int max_concurrent_requests = 0;
  // JWT
  std::string jwt_algorithm;  // "" = no JWT
  std::string jwt_key;
  std::string jwt_issuer;
  std::string jwt_audience;
  int64_t jwt_leeway = 30;
  std::string jwt_roles_claim = "roles";
  std::string jwt_subject_claim = "sub";
  // A gateway's forwarded identity
  std::string trusted_principal_header;
  std::string trusted_roles_header;
  std::string trusted_proxies = "127.0.0.1/32,::1/128";
  std::string trusted_default_roles = "developer";
  // Limits of principals outside the key file (JWT subjects, forwarded names)
  double default_requests_per_second = 0;
  int64_t default_tokens_per_minute = 0;
  int32_t default_max_concurrent = 0;
  // Audit and usage
  std::string audit_log;
  int64_t audit_max_bytes = 0;
  bool audit_prompts = false;
  std::string usage_file;
  // Response cache
  std::string response_cache = "off";
  std::string response_cache_redis;
  int64_t response_cache_ttl = 300;
  int64_t response_cache_max_bytes = int64_t{256} << 20;
};

void add_guardrail_options(CLI::App* cmd, GuardrailArgs* a);

// What the guardrails own; server() is the non-owning view OpenAiServer takes.
struct Guardrails {
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<UsageLedger> usage;
  std::unique_ptr<ResponseCache> cache;
  bool protect_ops_routes = false;
  bool audit_prompts = false;
  ServerGuardrails server() const;
};

// Builds them, refusing contradictions and an open non-loopback `host`, and
// logs (loudly when authentication is off) what is in force.
Result<Guardrails> make_guardrails(const GuardrailArgs& a, const std::string& host);

}  // namespace r1
