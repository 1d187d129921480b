// The r1serve HTTP server: the OpenAI routes, the simple and tokenizer
// routes, and the operational ones (/health, /ready, /metrics), over one
// HttpServer. Ready goes false while draining; inference routes then answer 503.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/http/http_server.h"
#include "server/ops/audit_log.h"
#include "server/ops/response_cache.h"
#include "server/ops/usage_ledger.h"
#include "server/served_model.h"

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
};

class OpenAiServer {
 public:
  // `model`, `metrics` and `access_log` must outlive the server.
  OpenAiServer(const ServedModel& model, Metrics& metrics, AccessLog& access_log,
               const HttpServerOptions& http, ServerGuardrails guardrails = {});

  Result<int> bind() { return http_.bind(); }
  void serve() { http_.serve(); }
  bool tls() const { return http_.tls(); }
  // New TLS connections use the certificate and key read again (SIGHUP).
  Status reload_tls() { return http_.reload_tls(); }

  // Marks the server ready (model loaded and warmed up); also the
  // r1serve_ready gauge.
  void set_ready(bool ready);
  // Stops taking inference requests (503), waits up to `timeout` for the
  // ones in flight, then stops the HTTP server. Returns whether all finished.
  // (POST /admin/drain only takes the replica out of rotation: /ready and
  // inference answer 503 until POST /admin/resume.)
  bool drain(std::chrono::milliseconds timeout);
  int in_flight() const { return in_flight_.load(); }

 private:
  void add_routes();
  // Registers `handler` behind the auth check: `roles` those allowed (any
  // one suffices; empty: any valid credential); `open` routes skip the
  // check. Routes open to developers alone are the inference routes: they
  // are rate limited and their usage is metered.
  void route(const std::string& method, const std::string& path, std::vector<Role> roles, bool open,
             HttpHandler handler);
  void add_admin_routes();
  HttpResponse guarded(const HttpRequest& req,
                       HttpResponse (*handler)(const struct GenerationRoutesContext&,
                                               const HttpRequest&));

  const ServedModel& model_;
  Metrics& metrics_;
  AccessLog& access_log_;
  ServerGuardrails g_;
  HttpServer http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> started_{false};        // ready once; /startup stays 200 after
  std::atomic<bool> draining_{false};       // shutting down (drain())
  std::atomic<bool> admin_drained_{false};  // taken out of rotation by POST /admin/drain
  std::atomic<int> in_flight_{0};
  // Engine counters already added to the metrics (the engine reports totals).
  std::mutex counters_mu_;
  SchedulerStats counted_;
};

}  // namespace r1
