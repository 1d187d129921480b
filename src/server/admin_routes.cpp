// The operator's and auditor's routes other than the model ones
// (model_admin_routes.cpp): the default model's state, drain and resume,
// usage and the audit trail.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "obs/log.h"
#include "server/api/errors.h"
#include "server/api/generation_routes.h"
#include "server/api/openai_response.h"
#include "server/openai_server.h"

namespace r1 {

void OpenAiServer::add_admin_routes() {
  const std::vector<Role> operators = {Role::kOperator};
  const std::vector<Role> readers = {Role::kOperator, Role::kAuditor};
  // The default model's active version (GET /admin/models lists them all).
  route("GET", "/admin/model", operators, false, [this](const HttpRequest&, const CallContext&) {
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
  route(
      "POST", "/admin/drain", operators, false,
      [this](const HttpRequest&, const CallContext& call) {
        admin_drained_.store(true);
        log_warning("drained by an operator (" + call.principal + "); POST /admin/resume to undo");
        return json_response({{"status", "draining"}, {"in_flight", in_flight_.load()}});
      });
  route("POST", "/admin/resume", operators, false,
        [this](const HttpRequest&, const CallContext& call) {
          if (draining_.load()) {
            return error_response(not_ready("the server is shutting down; it cannot resume"));
          }
          admin_drained_.store(false);
          log_info("resumed by an operator (" + call.principal + ")");
          return json_response({{"status", ready_.load() ? "ready" : "loading"}});
        });
  route("GET", "/admin/usage", readers, false, [this](const HttpRequest& req, const CallContext&) {
    if (g_.usage == nullptr) {
      return error_response(api_error(not_found("usage metering is off on this server")));
    }
    const std::string principal = req.query_param("principal"), model = req.query_param("model"),
                      version = req.query_param("version");
    nlohmann::json data = nlohmann::json::array();
    for (const UsageRow& r : g_.usage->rows()) {
      if ((!principal.empty() && r.principal != principal) ||
          (!model.empty() && r.model != model) || (!version.empty() && r.version != version)) {
        continue;
      }
      data.push_back({{"principal", r.principal},
                      {"model", r.model},
                      {"version", r.version},
                      {"requests", r.totals.requests},
                      {"prompt_tokens", r.totals.prompt_tokens},
                      {"completion_tokens", r.totals.completion_tokens},
                      {"reasoning_tokens", r.totals.reasoning_tokens},
                      {"cache_hits", r.totals.cache_hits}});
    }
    return json_response({{"object", "list"}, {"data", data}});
  });
  route("GET", "/admin/audit", {Role::kAuditor}, false,
        [this](const HttpRequest& req, const CallContext&) {
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

}  // namespace r1
