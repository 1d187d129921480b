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
#include "server/api/resumption.h"

namespace r1 {

OpenAiServer::OpenAiServer(ModelTable& models, Metrics& metrics, AccessLog& access_log,
                           const HttpServerOptions& http, ServerGuardrails guardrails,
                           VersionHooks loader)
    : models_(models),
      loader_(std::move(loader)),
      metrics_(metrics),
      access_log_(access_log),
      g_(guardrails),
      guard_(guardrails, metrics),
      http_(http) {
  // Series exist (at zero) from the start.
  for (const ModelTable::ModelView& m : models_.models()) metrics_.model(m.name);
  add_routes();
  add_admin_routes();
  add_model_admin_routes();
}

void OpenAiServer::set_ready(bool ready) {
  ready_.store(ready);
  if (ready) started_.store(true);
  metrics_.set_ready(ready && !draining_.load() && !admin_drained_.load());
}

HttpResponse OpenAiServer::guarded(const HttpRequest& req, const CallContext& call,
                                   GenerationHandler handler) {
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
  GenerationRoutesContext ctx{&models_, &metrics_, &access_log_, &in_flight_,
                              g_.cache, nullptr,   nullptr,      g_.resumption};
  return handler(ctx, req, call);
}

void OpenAiServer::route(const std::string& method, const std::string& path,
                         std::vector<Role> roles, bool open, GuardedHandler handler) {
  if (open) {
    http_.route(method, path, [handler = std::move(handler)](const HttpRequest& req) {
      return handler(req, CallContext{});
    });
    return;
  }
  RouteGuard::Route r{path, std::move(roles)};
  r.inference = r.roles == std::vector<Role>{Role::kDeveloper};
  http_.route(method, path,
              [this, r = std::move(r), handler = std::move(handler)](const HttpRequest& req) {
                return guard_.handle(req, r, handler);
              });
}

void OpenAiServer::add_routes() {
  const std::vector<Role> dev = {Role::kDeveloper};
  const bool ops_open = !g_.protect_ops_routes;
  route("POST", "/v1/chat/completions", dev, false,
        [this](const HttpRequest& r, const CallContext& c) {
          return guarded(r, c, handle_chat_completions);
        });
  route("POST", "/v1/completions", dev, false, [this](const HttpRequest& r, const CallContext& c) {
    return guarded(r, c, handle_completions);
  });
  route("POST", "/predict", dev, false, [this](const HttpRequest& r, const CallContext& c) {
    return guarded(r, c, handle_predict);
  });
  // Each model the caller may see, as its active version; then the ids of
  // its loaded versions: their aliases, and NAME@VERSION for any version
  // besides the active one (a canary, or one waiting to be activated).
  route("GET", "/v1/models", dev, false, [this](const HttpRequest&, const CallContext& call) {
    std::vector<ModelCard> cards;
    for (const ModelTable::ModelView& m : models_.models()) {
      if (!ModelTable::may_see(m.name, call.allowed_models) || !m.active) continue;
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
  route("GET", "/health", {}, ops_open, [](const HttpRequest&, const CallContext&) {
    return json_response({{"status", "ok"}});
  });
  // For a startup probe: 200 once the model is loaded and warmed up, and
  // from then on (draining included), so a slow load is not mistaken for a
  // dead process and a draining pod is not restarted.
  route("GET", "/startup", {}, ops_open, [this](const HttpRequest&, const CallContext&) {
    if (started_.load()) return json_response({{"status", "started"}});
    return json_response({{"status", "loading"}}, 503);
  });
  route("GET", "/ready", {}, ops_open, [this](const HttpRequest&, const CallContext&) {
    if (ready_.load() && !draining_.load() && !admin_drained_.load()) {
      return json_response({{"status", "ready"}});
    }
    return json_response({{"status", ready_.load() ? "draining" : "loading"}}, 503);
  });
  route("GET", "/metrics", {}, ops_open, [this](const HttpRequest&, const CallContext&) {
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
      std::vector<Metrics::LoadedVersionLabel> labels;
      for (const ModelTable::Version& v : m.loaded) {
        labels.push_back({v->version, v == m.active   ? "active"
                                      : v == m.canary ? "canary"
                                                      : "loaded"});
      }
      metrics_.set_loaded_versions(m.name, labels);
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
  // Not generations: no readiness check, no in-flight count, no requests_total.
  const GenerationRoutesContext tokens{&models_, nullptr, nullptr, nullptr,
                                       nullptr,  nullptr, nullptr};
  route("POST", "/tokenize", dev, false, [tokens](const HttpRequest& r, const CallContext& c) {
    return handle_tokenize(tokens, r, c);
  });
  route("POST", "/detokenize", dev, false, [tokens](const HttpRequest& r, const CallContext& c) {
    return handle_detokenize(tokens, r, c);
  });
}

void OpenAiServer::interrupt(const std::string& why) {
  if (interrupted_.exchange(true)) return;
  draining_.store(true);
  metrics_.set_ready(false);
  metrics_.set_interrupted(true);
  if (g_.resumption != nullptr) {
    g_.resumption->interrupt();
    log_warning(why + ": out of rotation; generations in flight are checkpointed (" +
                std::string(g_.resumption->kind()) + ") and resume on another replica");
  } else {
    log_warning(why +
                ": out of rotation; no checkpoint store, so generations in flight "
                "finish here or are lost");
  }
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
