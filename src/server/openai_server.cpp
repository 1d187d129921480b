#include "server/openai_server.h"

#include <thread>

#include <nlohmann/json.hpp>

#include "obs/access_log.h"
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

OpenAiServer::OpenAiServer(const ServedModel& model, Metrics& metrics, AccessLog& access_log,
                           const HttpServerOptions& http, ServerSecurity security)
    : model_(model), metrics_(metrics), access_log_(access_log), security_(security), http_(http) {
  metrics_.model(model_.name);  // series exist (at zero) from the start
  add_routes();
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
  if (!ready_.load() || draining_.load()) {
    return error_response(
        not_ready(draining_.load() ? "the server is shutting down" : "the model is still loading"));
  }
  GenerationRoutesContext ctx{&model_, &metrics_, &access_log_, &in_flight_};
  return handler(ctx, req);
}

void OpenAiServer::route(const std::string& method, const std::string& path,
                         std::optional<Role> role, bool open, HttpHandler handler) {
  if (security_.auth == nullptr || open) {
    http_.route(method, path, std::move(handler));
    return;
  }
  http_.route(
      method, path, [this, path, role, handler = std::move(handler)](const HttpRequest& req) {
        const AuthDecision d = security_.auth->check(req, role);
        AuditRecord audit;
        audit.time = format_utc_iso8601(std::chrono::system_clock::now());
        audit.request_id = req.request_id;
        audit.route = path;
        audit.model = model_.name;
        audit.version = model_.version;
        audit.client = req.remote_addr;
        audit.role = role ? std::string(role_name(*role)) : "";
        if (!d.principal) {
          if (security_.audit != nullptr) {
            audit.event = "auth_failure";
            audit.status = d.status;
            security_.audit->write(audit);  // a failed write is logged by nobody: best effort
          }
          return auth_error_response(d);
        }
        audit.event = "call";
        audit.principal = d.principal->id;
        HttpRequest authed = req;
        authed.principal = d.principal->id;
        RateLimiter* limiter = role == Role::kDeveloper ? security_.limiter : nullptr;
        RateLimiter::Decision limit;
        if (limiter != nullptr) {
          limit = limiter->admit(d.principal->id, d.principal->limits);
          if (!limit.allowed) {
            metrics_.inc_rate_limited(path);
            HttpResponse res =
                error_response(rate_limited(limit.message, limit.retry_after_seconds));
            for (const auto& [k, v] : limit.headers) res.headers[k] = v;
            if (security_.audit != nullptr) {
              audit.status = 429;
              security_.audit->write(audit);
            }
            return res;
          }
        }
        // Ends when the response is done: at return for a whole body, when
        // the stream function (which holds a reference) is destroyed for a
        // stream. Releases the rate-limit slot and writes the audit record
        // with the token counts the generation reported.
        struct Call {
          Call(RateLimiter* l, AuditLog* a, AuditRecord r)
              : limiter(l), audit(a), record(std::move(r)) {}
          Call(const Call&) = delete;
          Call& operator=(const Call&) = delete;
          ~Call() {
            if (limiter != nullptr) limiter->release(record.principal);
            if (audit != nullptr) audit->write(record);
          }
          RateLimiter* limiter;
          AuditLog* audit;
          AuditRecord record;
        };
        auto call = std::make_shared<Call>(limiter, security_.audit, std::move(audit));
        authed.on_usage = [call](int64_t prompt, int64_t completion) {
          call->record.prompt_tokens = prompt;
          call->record.completion_tokens = completion;
          if (call->limiter != nullptr) {
            call->limiter->charge_tokens(call->record.principal, prompt + completion);
          }
        };
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
  const std::optional<Role> dev = Role::kDeveloper;
  const bool ops_open = !security_.protect_ops_routes;
  route("POST", "/v1/chat/completions", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_chat_completions); });
  route("POST", "/v1/completions", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_completions); });
  route("POST", "/predict", dev, false,
        [this](const HttpRequest& r) { return guarded(r, handle_predict); });
  route("GET", "/v1/models", dev, false, [this](const HttpRequest&) {
    std::vector<ModelCard> cards;
    cards.push_back({model_.name, model_.created, "r1serve", model_.context_len});
    for (const auto& alias : model_.aliases) {
      cards.push_back({alias, model_.created, "r1serve", model_.context_len});
    }
    return json_response(model_list_json(cards));
  });
  route("GET", "/health", std::nullopt, ops_open, [](const HttpRequest&) {
    return json_response({{"status", "ok"}});
  });
  route("GET", "/ready", std::nullopt, ops_open, [this](const HttpRequest&) {
    if (ready_.load() && !draining_.load()) return json_response({{"status", "ready"}});
    return json_response({{"status", draining_.load() ? "draining" : "loading"}}, 503);
  });
  route("GET", "/metrics", std::nullopt, ops_open, [this](const HttpRequest&) {
    const SchedulerStats s = model_.engine->stats();
    ModelMetrics& mm = metrics_.model(model_.name);
    mm.set_running(s.n_running);
    mm.set_waiting(s.n_waiting);
    mm.set_kv_cache_usage(s.kv_usage);
    mm.set_kv_cache_free_blocks(s.n_free_blocks);
    {
      std::lock_guard<std::mutex> lock(counters_mu_);
      mm.add_prefix_cache_queries(s.prefix_cache_queries - counted_.prefix_cache_queries);
      mm.add_prefix_cache_hits(s.prefix_cache_hits - counted_.prefix_cache_hits);
      mm.inc_preemptions(s.n_preemptions - counted_.n_preemptions);
      counted_ = s;
    }
    HttpResponse res;
    res.content_type = Metrics::kContentType;
    res.body = metrics_.serialize();
    return res;
  });
  route("POST", "/tokenize", dev, false, [this](const HttpRequest& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_discarded() && body.is_object() && body.contains("messages")) {
      // As vLLM: the chat prompt the messages make, as /v1/chat/completions
      // would tokenise it.
      auto parsed = parse_chat_completion_request(
          nlohmann::json{{"model", model_.name}, {"messages", body["messages"]}}.dump(),
          model_.generation, RequestLimits{});
      if (!parsed.ok()) return error_response(parsed.error());
      if (!model_.chat_template) return error_response(api_error(model_.chat_template_status));
      auto ids = encode_chat_prompt(model_, parsed->messages);
      if (!ids.ok()) return error_response(api_error(ids.status(), "messages"));
      return json_response(
          {{"tokens", *ids}, {"count", ids->size()}, {"max_model_len", model_.context_len}});
    }
    if (body.is_discarded() || !body.is_object() || !body.contains("prompt") ||
        !body["prompt"].is_string()) {
      return error_response(
          bad_request("expected {\"prompt\": string} or {\"messages\": [...]}", "prompt"));
    }
    const bool special = body.value("add_special_tokens", false);
    auto ids = model_.tokenizer->encode(body["prompt"].get<std::string>(), special);
    if (!ids.ok()) return error_response(api_error(ids.status(), "prompt"));
    return json_response(
        {{"tokens", *ids}, {"count", ids->size()}, {"max_model_len", model_.context_len}});
  });
  route("POST", "/detokenize", dev, false, [this](const HttpRequest& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("tokens") ||
        !body["tokens"].is_array()) {
      return error_response(bad_request("expected {\"tokens\": [ids]}", "tokens"));
    }
    std::vector<int32_t> ids;
    for (const auto& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
          t.get<int64_t>() >= model_.tokenizer->n_tokens()) {
        return error_response(bad_request("tokens must be ids in the vocabulary", "tokens"));
      }
      ids.push_back(t.get<int32_t>());
    }
    return json_response({{"prompt", model_.tokenizer->decode(ids)}});
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
