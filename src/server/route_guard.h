// The guard every non-open route passes, in order: authentication (API key,
// JWT or a trusted gateway's header) and the route's roles, then the
// caller's rate limits (inference routes), then accounting: the audit
// record, usage and token charges, which end when the response does (at
// return for a whole body, when the stream ends for a stream).
#pragma once

#include <string>
#include <vector>

#include "obs/metrics.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/auth/role.h"
#include "server/call_context.h"
#include "server/http/http_server.h"
#include "server/ops/audit_log.h"
#include "server/ops/response_cache.h"
#include "server/ops/usage_ledger.h"

namespace r1 {

// Who may call what, and the guardrails around each call. Without an
// authenticator every route is open (the caller decides whether that is
// allowed; see serve_command) and calls are accounted to "anonymous".
struct ServerGuardrails {
  const Authenticator* auth = nullptr;  // outlives the server
  // /health, /ready and /metrics need valid credentials (any role) too.
  bool protect_ops_routes = false;
  // Per-principal limits on the inference routes; may be null.
  RateLimiter* limiter = nullptr;
  // Every call and auth failure; may be null.
  AuditLog* audit = nullptr;
  bool audit_prompts = false;  // put the request's prompt in audit records
  // Usage per principal and model (inference routes); may be null.
  UsageLedger* usage = nullptr;
  // Whole answers of deterministic requests; may be null.
  ResponseCache* cache = nullptr;
  // Checkpoints of generations in flight, for resumption on another
  // replica (server/api/resumption.h); may be null.
  class Resumption* resumption = nullptr;
};

class RouteGuard {
 public:
  struct Route {
    std::string path;
    std::vector<Role> roles;  // any one suffices; empty: any valid credential
    // Inference routes (developers alone) are rate limited and metered.
    bool inference = false;
  };

  // `metrics` outlives the guard.
  RouteGuard(const ServerGuardrails& g, Metrics& metrics) : g_(g), metrics_(metrics) {}

  // Runs `handler` for `req` if the guard lets it through. The handler's
  // CallContext holds the caller's id, its model allow-list and the
  // accounting's callbacks.
  HttpResponse handle(const HttpRequest& req, const Route& route,
                      const GuardedHandler& handler) const;

 private:
  ServerGuardrails g_;
  Metrics& metrics_;
};

}  // namespace r1
