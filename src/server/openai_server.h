// The r1serve HTTP server: the OpenAI routes, the simple and tokenizer
// routes, and the operational ones (/health, /ready, /metrics), over one
// HttpServer. Ready goes false while draining; inference routes then answer 503.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/api/generation_job.h"
#include "server/auth/authenticator.h"
#include "server/auth/rate_limiter.h"
#include "server/call_context.h"
#include "server/http/http_server.h"
#include "server/model_table.h"
#include "server/ops/audit_log.h"
#include "server/ops/response_cache.h"
#include "server/ops/usage_ledger.h"
#include "server/route_guard.h"
#include "server/served_model.h"

namespace r1 {

// How operators' activations load versions (the app's: it knows the
// registry and the backends). Either may be unset: activation then only
// moves traffic among versions already loaded.
struct VersionHooks {
  // The version number `ref` (a version number or an alias) names.
  std::function<Result<std::string>(const std::string& model, const std::string& ref)> resolve;
  // Loads, verifies and warms up a version, ready to serve.
  std::function<Result<std::shared_ptr<const ServedModel>>(const std::string& model,
                                                           const std::string& version)>
      load;
};

class OpenAiServer {
 public:
  // `models`, `metrics` and `access_log` must outlive the server; `models`
  // holds at least one version.
  OpenAiServer(ModelTable& models, Metrics& metrics, AccessLog& access_log,
               const HttpServerOptions& http, ServerGuardrails guardrails = {},
               VersionHooks loader = {});

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
  // The replica will go (SIGTERM, a spot notice): it leaves rotation (/ready
  // and new inference requests 503) and, with a checkpoint store, every
  // resumable generation in flight writes its checkpoint and ends, telling
  // its client how to resume on another replica. Idempotent.
  void interrupt(const std::string& why);
  int in_flight() const { return in_flight_.load(); }

  // Loads `ref` (a version number or alias) of served model `name` if it is
  // not loaded, then routes `percent` of its requests there (100: makes it
  // the active version; the versions no longer routed unload once their
  // requests finish). One activation at a time. `who` names the operator
  // in the log. Used by POST /admin/models/{name}/activate and by the app
  // when SIGHUP moves an alias.
  Result<ModelTable::ModelView> activate(const std::string& name, const std::string& ref,
                                         int percent, const std::string& who);

 private:
  void add_routes();
  // Registers `handler` behind the auth check: `roles` those allowed (any
  // one suffices; empty: any valid credential); `open` routes skip the
  // check. Routes open to developers alone are the inference routes: they
  // are rate limited and their usage is metered.
  void route(const std::string& method, const std::string& path, std::vector<Role> roles, bool open,
             GuardedHandler handler);
  void add_admin_routes();
  // The generation routes: 503 while loading or draining, else `handler`
  // with the routes' context, counted in flight.
  using GenerationHandler = HttpResponse (*)(const GenerationRoutesContext&, const HttpRequest&,
                                             const CallContext&);
  HttpResponse guarded(const HttpRequest& req, const CallContext& call, GenerationHandler handler);
  void add_model_admin_routes();

  ModelTable& models_;
  VersionHooks loader_;
  std::mutex activate_mu_;  // one activation at a time
  Metrics& metrics_;
  AccessLog& access_log_;
  ServerGuardrails g_;
  RouteGuard guard_;
  HttpServer http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> started_{false};        // ready once; /startup stays 200 after
  std::atomic<bool> draining_{false};       // shutting down (drain())
  std::atomic<bool> admin_drained_{false};  // taken out of rotation by POST /admin/drain
  std::atomic<bool> interrupted_{false};    // interrupt() was called
  std::atomic<int> in_flight_{0};
  // Engine counters already added to the metrics (the engine reports totals).
  std::mutex counters_mu_;
  std::map<std::string, SchedulerStats> counted_;  // by loaded version id
};

}  // namespace r1
