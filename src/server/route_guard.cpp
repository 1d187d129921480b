#include "server/route_guard.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>

#include "obs/log.h"
#include "server/api/errors.h"
#include "server/api/generation_routes.h"

namespace r1 {

namespace {

// The prompt of an inference request for the audit trail: the messages,
// prompt or text field as the client sent it.
std::string prompt_of(const nlohmann::json& j) {
  if (!j.is_object()) return "";
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
// reported; adds the usage to the ledger and writes the audit record when
// settled (a stream settles before its last event) or at the end; releases
// the concurrency slot at the end.
struct Call {
  Call(RateLimiter* l, AuditLog* a, UsageLedger* u, Metrics* m, AuditRecord r)
      : limiter(l), audit(a), usage_ledger(u), metrics(m), record(std::move(r)) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() {
    if (limiter != nullptr) limiter->release(record.principal);
    settle();
  }
  // Adds the usage to the ledger and writes the audit record, once.
  void settle() {
    if (settled) return;
    settled = true;
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
        if (Status s = usage_ledger->add(record.principal, record.model, record.version, t);
            !s.ok()) {
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
  bool settled = false;
};

}  // namespace

HttpResponse RouteGuard::handle(const HttpRequest& req, const Route& route,
                                const GuardedHandler& handler) const {
  AuditRecord audit;
  audit.time = format_utc_iso8601(std::chrono::system_clock::now());
  audit.request_id = req.request_id;
  audit.route = route.path;
  // The model and version that serve an inference call are known once its
  // body is read; the call reports them (Call::report).
  audit.client = req.remote_addr;
  for (Role r : route.roles) {
    audit.role += (audit.role.empty() ? "" : ",") + std::string(role_name(r));
  }
  Principal who{"anonymous", "none", {}, {}, {}};
  if (g_.auth != nullptr) {
    AuthDecision d = g_.auth->check(req, route.roles);
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
  CallContext call_ctx;
  call_ctx.principal = g_.auth != nullptr ? who.id : "";
  call_ctx.allowed_models = who.models;
  RateLimiter* limiter = route.inference ? g_.limiter : nullptr;
  RateLimiter::Decision limit;
  if (limiter != nullptr) {
    limit = limiter->admit(who.id, who.limits);
    if (!limit.allowed) {
      metrics_.inc_rate_limited(route.path);
      HttpResponse res = error_response(rate_limited(limit.message, limit.retry_after_seconds));
      for (const auto& [k, v] : limit.headers) res.headers[k] = v;
      if (g_.audit != nullptr) {
        audit.event = "rate_limited";
        audit.status = 429;
        write_audit(g_.audit, audit);
      }
      return res;
    }
  }
  auto call = std::make_shared<Call>(limiter, g_.audit, route.inference ? g_.usage : nullptr,
                                     route.inference ? &metrics_ : nullptr, std::move(audit));
  call_ctx.on_usage = [call](const CallUsage& u) { call->report(u); };
  call_ctx.on_settle = [call] { call->settle(); };
  call_ctx.on_resume = [call](const std::string& id) {
    call->record.event = "resume";
    call->record.resumes = id;
  };
  if (route.inference && g_.audit_prompts) {
    // The handler parses the body; the audit record takes the prompt from it.
    call_ctx.on_body = [call](const nlohmann::json& body) {
      call->record.prompt = prompt_of(body);
    };
  }
  HttpResponse res = handler(req, call_ctx);
  call->record.status = res.status;
  for (const auto& [k, v] : limit.headers) res.headers[k] = v;
  if (res.stream) {
    res.stream = [inner = std::move(res.stream), call](StreamWriter& w) { inner(w); };
  }
  return res;
}

}  // namespace r1
