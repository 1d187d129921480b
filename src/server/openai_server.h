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

#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/http/http_server.h"
#include "server/ops/audit_log.h"
#include "server/served_model.h"

namespace r1 {

// Who may call what. Without an authenticator every route is open (the
// caller decides whether that is allowed; see serve_command).
struct ServerSecurity {
  const Authenticator* auth = nullptr;  // outlives the server
  // /health, /ready and /metrics need valid credentials (any role) too.
  bool protect_ops_routes = false;
  // Per-principal limits on the developer routes (needs `auth`); may be null.
  RateLimiter* limiter = nullptr;
  // Every authenticated call and auth failure (needs `auth`); may be null.
  AuditLog* audit = nullptr;
};

class OpenAiServer {
 public:
  // `model`, `metrics` and `access_log` must outlive the server.
  OpenAiServer(const ServedModel& model, Metrics& metrics, AccessLog& access_log,
               const HttpServerOptions& http, ServerSecurity security = {});

  Result<int> bind() { return http_.bind(); }
  void serve() { http_.serve(); }

  // Marks the server ready (model loaded and warmed up).
  void set_ready(bool ready) { ready_.store(ready); }
  // Stops taking inference requests (503), waits up to `timeout` for the
  // ones in flight, then stops the HTTP server. Returns whether all finished.
  bool drain(std::chrono::milliseconds timeout);
  int in_flight() const { return in_flight_.load(); }

 private:
  void add_routes();
  // Registers `handler` behind the auth check: `role` the role it needs
  // (nullopt: any valid credential); `open` routes skip the check.
  void route(const std::string& method, const std::string& path, std::optional<Role> role,
             bool open, HttpHandler handler);
  HttpResponse guarded(const HttpRequest& req,
                       HttpResponse (*handler)(const struct GenerationRoutesContext&,
                                               const HttpRequest&));

  const ServedModel& model_;
  Metrics& metrics_;
  AccessLog& access_log_;
  ServerSecurity security_;
  HttpServer http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
  // Engine counters already added to the metrics (the engine reports totals).
  std::mutex counters_mu_;
  SchedulerStats counted_;
};

}  // namespace r1
