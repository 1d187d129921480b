#include "server/openai_server.h"

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "obs/access_log.h"
#include "obs/log.h"
#include "server/api/errors.h"
#include "server/api/generation_routes.h"
#include "server/api/openai_request.h"
#include "server/api/openai_response.h"

namespace r1 {

namespace {

HttpResponse json_response(const nlohmann::json& body, int status = 200) {
  HttpResponse res;
  res.status = status;
  res.body = to_json_text(body);
  return res;
}

}  // namespace

OpenAiServer::OpenAiServer(ModelTable& models, Metrics& metrics, AccessLog& access_log,
                           const HttpServerOptions& http, ServerGuardrails guardrails,
                           VersionHooks loader)
    : models_(models),
      loader_(std::move(loader)),
      metrics_(metrics),
      access_log_(access_log),
      g_(guardrails),
      http_(http) {
  // Series exist (at zero) from the start.
  for (const ModelTable::ModelView& m : models_.models()) metrics_.model(m.name);
  add_routes();
  add_admin_routes();
  add_model_admin_routes();
}

std::shared_ptr<const ServedModel> OpenAiServer::version_for(const HttpRequest& req) const {
  const RequestRouting routing = peek_routing(req.body);
  if (routing.model) return models_.route(*routing.model, routing.user, req.allowed_models);
  std::shared_ptr<const ServedModel> m = models_.default_version(routing.user);
  return m && ModelTable::may_see(m->name, req.allowed_models) ? m : nullptr;
}

void OpenAiServer::set_ready(bool ready) {
  ready_.store(ready);
  if (ready) started_.store(true);
  metrics_.set_ready(ready && !draining_.load() && !admin_drained_.load());
}

HttpResponse OpenAiServer::guarded(const HttpRequest& req,
                                   HttpResponse (*handler)(const GenerationRoutesContext&,
                                                           const HttpRequest&)) {
  // Counted before the draining check, so drain() cannot stop the server
  // between the check and the handler's own in-flight accounting.
  in_flight_.fetch_add(1);
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{in_flight_};
  if (!ready_.load() || draining_.load() || admin_drained_.load()) {
    return error_response(not_ready(!ready_.load()     ? "the model is still loading"
                                    : draining_.load() ? "the server is shutting down"
                                                       : "the server is drained by an operator"));
  }
  GenerationRoutesContext ctx{&models_, &metrics_, &access_log_, &in_flight_, g_.cache};
  return handler(ctx, req);
}

namespace {

// The prompt of an inference request for the audit trail: the messages,
// prompt or text field as the client sent it.
std::string prompt_of(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  for (const char* field : {"messages", "prompt", "text"}) {
    auto it = j.find(field);
    if (it == j.end()) continue;
    return it->is_string() ? it->get<std::string>()
                           : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return "";
}

// Audit writes are best effort on the request path: a failure is logged and
// the request goes on.
void write_audit(AuditLog* audit, const AuditRecord& record) {
  if (audit == nullptr) return;
  if (Status s = audit->write(record); !s.ok()) log_error("audit: " + s.message());
}

// One accounted call, alive until its response is done: at return for a
// whole body, when the stream function (which holds a reference) is
// destroyed for a stream. Charges tokens to the rate limiter as they are
// reported, and at the end releases the concurrency slot, adds the usage to
// the ledger and writes the audit record.
struct Call {
  Call(RateLimiter* l, AuditLog* a, UsageLedger* u, Metrics* m, AuditRecord r)
      : limiter(l), audit(a), usage_ledger(u), metrics(m), record(std::move(r)) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() {
    if (limiter != nullptr) limiter->release(record.principal);
    if (reported) {
      record.prompt_tokens = usage.prompt_tokens;
      record.completion_tokens = usage.completion_tokens;
      record.reasoning_tokens = usage.reasoning_tokens;
      record.cache_hit = usage.cache_hit;
      if (metrics != nullptr) {
        metrics->add_principal_usage(record.principal, record.model, usage.cache_hit,
                                     usage.prompt_tokens, usage.completion_tokens);
      }
      if (usage_ledger != nullptr) {
        const UsageTotals t{1, usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens,
                            usage.cache_hit ? 1 : 0};
        if (Status s = usage_ledger->add(record.principal, record.model, t); !s.ok()) {
          log_error("usage: " + s.message());
        }
      }
    }
    write_audit(audit, record);
  }
  // Reported cumulatively; only the growth is charged.
  void report(const CallUsage& u) {
    const int64_t total = u.prompt_tokens + u.completion_tokens;
    if (limiter != nullptr && total > charged)
      limiter->charge_tokens(record.principal, total - charged);
    charged = std::max(charged, total);
    usage = u;
    reported = true;
    if (!u.model.empty()) {
      record.model = u.model;
      record.version = u.version;
    }
  }
  RateLimiter* limiter;
  AuditLog* audit;
  UsageLedger* usage_ledger;
  Metrics* metrics;  // null for routes that are not metered
  AuditRecord record;
  CallUsage usage;
  int64_t charged = 0;
  bool reported = false;
};

}  // namespace

void OpenAiServer::route(const std::string& method, const std::string& path,
                         std::vector<Role> roles, bool open, HttpHandler handler) {
  if (open) {
    http_.route(method, path, std::move(handler));
    return;
  }
  const bool inference = roles == std::vector<Role>{Role::kDeveloper};
  http_.route(method, path,
              [this, path, roles, inference, handler = std::move(handler)](const HttpRequest& req) {
                AuditRecord audit;
                audit.time = format_utc_iso8601(std::chrono::system_clock::now());
                audit.request_id = req.request_id;
                audit.route = path;
                // The version that serves an inference call is known once
                // its body is read; the call reports it (Call::report).
                audit.client = req.remote_addr;
                for (Role r : roles)
                  audit.role += (audit.role.empty() ? "" : ",") + std::string(role_name(r));
                Principal who{"anonymous", "none", {}, {}};
                if (g_.auth != nullptr) {
                  AuthDecision d = g_.auth->check(req, roles);
                  if (!d.principal) {
                    if (g_.audit != nullptr) {
                      audit.event = "auth_failure";
                      audit.status = d.status;
                      write_audit(g_.audit, audit);
                    }
                    return auth_error_response(d);
                  }
                  who = std::move(*d.principal);
                }
                audit.event = "call";
                audit.principal = who.id;
                audit.source = who.source;
                if (inference && g_.audit_prompts) audit.prompt = prompt_of(req.body);
                HttpRequest authed = req;
                authed.principal = g_.auth != nullptr ? who.id : "";
                authed.allowed_models = who.models;
                RateLimiter* limiter = inference ? g_.limiter : nullptr;
                RateLimiter::Decision limit;
                if (limiter != nullptr) {
                  limit = limiter->admit(who.id, who.limits);
                  if (!limit.allowed) {
                    metrics_.inc_rate_limited(path);
                    HttpResponse res =
                        error_response(rate_limited(limit.message, limit.retry_after_seconds));
                    for (const auto& [k, v] : limit.headers) res.headers[k] = v;
                    if (g_.audit != nullptr) {
                      audit.event = "rate_limited";
                      audit.status = 429;
                      write_audit(g_.audit, audit);
                    }
                    return res;
                  }
                }
                auto call =
                    std::make_shared<Call>(limiter, g_.audit, inference ? g_.usage : nullptr,
                                           inference ? &metrics_ : nullptr, std::move(audit));
                authed.on_usage = [call](const CallUsage& u) { call->report(u); };
                HttpResponse res = handler(authed);
                call->record.status = res.status;
                for (const auto& [k, v] : limit.headers) res.headers[k] = v;
                if (res.stream) {
                  res.stream = [inner = std::move(res.stream), call](StreamWriter& w) { inner(w); };
                }
                return res;
              });
}

void OpenAiServer::add_routes() {
  const std::vector<Role> dev = {Role::kDeveloper};
  const bool ops_open = !g_.protect_ops_routes;
  route("POST", "/v1/chat/completions", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_chat_completions); });
  route("POST", "/v1/completions", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_completions); });
  route("POST", "/predict", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_predict); });
  // Each model the caller may see, as its active version; then the ids of
  // its loaded versions: their aliases, and NAME@VERSION for any version
  // besides the active one (a canary, or one waiting to be activated).
  route("GET", "/v1/models", dev, false, [this](const HttpRequest& req) {
    std::vector<ModelCard> cards;
    for (const ModelTable::ModelView& m : models_.models()) {
      if (!ModelTable::may_see(m.name, req.allowed_models) || !m.active) continue;
      const ServedModel& a = *m.active;
      cards.push_back({m.name, a.created, "r1serve", a.context_len, m.name, a.version});
      for (const ModelTable::Version& v : m.loaded) {
        if (v != m.active &&
            std::find(v->aliases.begin(), v->aliases.end(), v->version_id()) == v->aliases.end()) {
          cards.push_back(
              {v->version_id(), v->created, "r1serve", v->context_len, m.name, v->version});
        }
        for (const auto& alias : v->aliases) {
          cards.push_back({alias, v->created, "r1serve", v->context_len, m.name, v->version});
        }
      }
    }
    return json_response(model_list_json(cards));
  });
  route("GET", "/health", {}, ops_open, [](const HttpRequest&) {
    return json_response({{"status", "ok"}});
  });
  // For a startup probe: 200 once the model is loaded and warmed up, and
  // from then on (draining included), so a slow load is not mistaken for a
  // dead process and a draining pod is not restarted.
  route("GET", "/startup", {}, ops_open, [this](const HttpRequest&) {
    if (started_.load()) return json_response({{"status", "started"}});
    return json_response({{"status", "loading"}}, 503);
  });
  route("GET", "/ready", {}, ops_open, [this](const HttpRequest&) {
    if (ready_.load() && !draining_.load() && !admin_drained_.load()) {
      return json_response({{"status", "ready"}});
    }
    return json_response({{"status", ready_.load() ? "draining" : "loading"}}, 503);
  });
  route("GET", "/metrics", {}, ops_open, [this](const HttpRequest&) {
    metrics_.set_ready(ready_.load() && !draining_.load() && !admin_drained_.load());
    // Per model: the gauges summed over its loaded versions (the KV usage
    // is the busiest one's); the counters grow by what each version's
    // engine counted since the last scrape.
    std::lock_guard<std::mutex> lock(counters_mu_);
    std::map<std::string, SchedulerStats> seen;
    for (const ModelTable::ModelView& m : models_.models()) {
      ModelMetrics& mm = metrics_.model(m.name);
      int64_t running = 0, waiting = 0, free_blocks = 0;
      double kv_usage = 0;
      for (const ModelTable::Version& v : m.loaded) {
        const SchedulerStats s = v->engine->stats();
        running += s.n_running;
        waiting += s.n_waiting;
        free_blocks += s.n_free_blocks;
        kv_usage = std::max(kv_usage, s.kv_usage);
        const SchedulerStats before = counted_[v->version_id()];
        mm.add_prefix_cache_queries(s.prefix_cache_queries - before.prefix_cache_queries);
        mm.add_prefix_cache_hits(s.prefix_cache_hits - before.prefix_cache_hits);
        mm.inc_preemptions(s.n_preemptions - before.n_preemptions);
        seen[v->version_id()] = s;
        if (v->gpu != nullptr) {
          if (std::optional<GpuSample> g = v->gpu->latest()) {
            metrics_.set_gpu_utilization(g->utilization);
            metrics_.set_gpu_memory_used(g->memory_used);
            metrics_.set_gpu_memory_total(g->memory_total);
            metrics_.set_gpu_power(g->power_watts);
          }
        }
      }
      mm.set_running(static_cast<int>(running));
      mm.set_waiting(static_cast<int>(waiting));
      mm.set_kv_cache_usage(kv_usage);
      mm.set_kv_cache_free_blocks(static_cast<int>(free_blocks));
    }
    counted_ = std::move(seen);  // unloaded versions drop out
    HttpResponse res;
    res.content_type = Metrics::kContentType;
    res.body = metrics_.serialize();
    return res;
  });
  route("POST", "/tokenize", dev, false, [this](const HttpRequest& r) {
    const std::shared_ptr<const ServedModel> m = version_for(r);
    if (!m) return error_response(model_not_found(peek_routing(r.body).model.value_or("")));
    return handle_tokenize(*m, r);
  });
  route("POST", "/detokenize", dev, false, [this](const HttpRequest& r) {
    const std::shared_ptr<const ServedModel> m = version_for(r);
    if (!m) return error_response(model_not_found(peek_routing(r.body).model.value_or("")));
    return handle_detokenize(*m, r);
  });
}

void OpenAiServer::add_admin_routes() {
  const std::vector<Role> operators = {Role::kOperator};
  const std::vector<Role> readers = {Role::kOperator, Role::kAuditor};
  // The default model's active version (GET /admin/models lists them all).
  route("GET", "/admin/model", operators, false, [this](const HttpRequest&) {
    const std::shared_ptr<const ServedModel> m = models_.default_version();
    nlohmann::json aliases = nlohmann::json::array();
    for (const auto& a : m->aliases) aliases.push_back(a);
    return json_response({{"name", m->name},
                          {"version", m->version},
                          {"aliases", aliases},
                          {"max_model_len", m->context_len},
                          {"ready", ready_.load()},
                          {"draining", draining_.load() || admin_drained_.load()},
                          {"in_flight", in_flight_.load()}});
  });
  // Out of rotation and back, without stopping the process: /ready answers
  // 503 so the load balancer stops sending, requests in flight finish.
  route("POST", "/admin/drain", operators, false, [this](const HttpRequest& req) {
    admin_drained_.store(true);
    log_warning("drained by an operator (" + req.principal + "); POST /admin/resume to undo");
    return json_response({{"status", "draining"}, {"in_flight", in_flight_.load()}});
  });
  route("POST", "/admin/resume", operators, false, [this](const HttpRequest& req) {
    if (draining_.load()) {
      return error_response(not_ready("the server is shutting down; it cannot resume"));
    }
    admin_drained_.store(false);
    log_info("resumed by an operator (" + req.principal + ")");
    return json_response({{"status", ready_.load() ? "ready" : "loading"}});
  });
  route("GET", "/admin/usage", readers, false, [this](const HttpRequest& req) {
    if (g_.usage == nullptr) {
      return error_response(api_error(not_found("usage metering is off on this server")));
    }
    const std::string principal = req.query_param("principal"), model = req.query_param("model");
    nlohmann::json data = nlohmann::json::array();
    for (const UsageRow& r : g_.usage->rows()) {
      if ((!principal.empty() && r.principal != principal) ||
          (!model.empty() && r.model != model)) {
        continue;
      }
      data.push_back({{"principal", r.principal},
                      {"model", r.model},
                      {"requests", r.totals.requests},
                      {"prompt_tokens", r.totals.prompt_tokens},
                      {"completion_tokens", r.totals.completion_tokens},
                      {"reasoning_tokens", r.totals.reasoning_tokens},
                      {"cache_hits", r.totals.cache_hits}});
    }
    return json_response({{"object", "list"}, {"data", data}});
  });
  route("GET", "/admin/audit", {Role::kAuditor}, false, [this](const HttpRequest& req) {
    if (g_.audit == nullptr) {
      return error_response(api_error(not_found("the audit trail is off on this server")));
    }
    size_t limit = 100;
    const std::string text = req.query_param("limit");
    if (!text.empty()) {
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > 10000) {
        return error_response(bad_request("limit must be 1..10000", "limit"));
      }
      limit = static_cast<size_t>(n);
    }
    nlohmann::json data = nlohmann::json::array();
    for (const std::string& line : g_.audit->tail(limit)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) data.push_back(std::move(j));
    }
    return json_response({{"object", "list"}, {"data", data}});
  });
}

bool OpenAiServer::drain(std::chrono::milliseconds timeout) {
  draining_.store(true);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool all = in_flight_.load() == 0;
  http_.stop();
  return all;
}

}  // namespace r1
