// The operator's model routes: what is loaded and routed where, and moving
// traffic between versions without a restart (blue-green, canary,
// rollback).
//   GET  /admin/models
//   POST /admin/models/{name}/activate  {"version": N | "alias": A, "percent"?: 1..100}
//   POST /admin/models/{name}/rollback  (the version active before the last activation)
#include <nlohmann/json.hpp>

#include "obs/log.h"
#include "server/api/errors.h"
#include "server/api/generation_routes.h"
#include "server/api/openai_response.h"
#include "server/openai_server.h"

namespace r1 {

namespace {

using nlohmann::json;

json version_json(const ServedModel& v) {
  return {{"version", v.version}, {"aliases", v.aliases}, {"created", v.created}};
}

json model_json(const ModelTable::ModelView& m) {
  json loaded = json::array();
  for (const ModelTable::Version& v : m.loaded) loaded.push_back(version_json(*v));
  json out = {{"name", m.name},
              {"active", m.active ? json(m.active->version) : json()},
              {"canary", m.canary ? json(m.canary->version) : json()},
              {"canary_percent", m.canary_percent},
              {"previous", m.previous.empty() ? json() : json(m.previous)},
              {"loaded", loaded}};
  return out;
}

// A load or activation failure as an API error: a version that does not
// exist is 404; one that cannot be loaded (a file failing verification, too
// little memory, a broken model) is 409, and the model keeps its versions.
HttpResponse activation_error(const Status& s) {
  if (s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInvalidArgument) {
    return error_response(api_error(s));
  }
  ApiError e = api_error(s);
  e.http_status = 409;
  e.type = "invalid_request_error";
  e.code = "version_not_loaded";
  return error_response(e);
}

}  // namespace

Result<ModelTable::ModelView> OpenAiServer::activate(const std::string& name,
                                                     const std::string& ref, int percent,
                                                     const std::string& who) {
  std::lock_guard<std::mutex> lock(activate_mu_);
  if (!models_.model(name)) return not_found("model " + name + " is not served");
  std::string version = ref;
  if (loader_.resolve) {
    R1_ASSIGN_OR_RETURN(version, loader_.resolve(name, ref));
  }
  if (!models_.find(name, version)) {
    if (!loader_.load) {
      return not_found("model " + name + " version " + version +
                       " is not loaded and this server cannot load versions");
    }
    log_info("loading model " + name + " version " + version + " (asked by " + who + ")");
    R1_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> loaded, loader_.load(name, version));
    R1_RETURN_IF_ERROR(models_.add(std::move(loaded)));
  }
  const Result<std::vector<ModelTable::Version>> unrouted =
      percent >= 100 ? models_.activate(name, version) : models_.set_canary(name, version, percent);
  if (!unrouted.ok()) return unrouted.status();
  for (const ModelTable::Version& v : *unrouted) {
    log_info("model " + name + " version " + v->version +
             " takes no new requests; it unloads when its last one ends");
  }
  log_info("model " + name + ": version " + version + " now takes " +
           std::to_string(std::min(percent, 100)) + "% of new requests (by " + who + ")");
  return *models_.model(name);
}

void OpenAiServer::add_model_admin_routes() {
  const std::vector<Role> operators = {Role::kOperator};
  route("GET", "/admin/models", operators, false, [this](const HttpRequest&, const CallContext&) {
    json data = json::array();
    for (const ModelTable::ModelView& m : models_.models()) data.push_back(model_json(m));
    return json_response({{"object", "list"}, {"data", data}});
  });
  route("POST", "/admin/models/{name}/activate", operators, false,
        [this](const HttpRequest& req, const CallContext& call) {
          const json body = json::parse(req.body, nullptr, false);
          if (body.is_discarded() || !body.is_object()) {
            return error_response(bad_request(
                "expected {\"version\": N} or {\"alias\": NAME}, with \"percent\" for a canary"));
          }
          std::string ref;
          if (const auto v = body.find("version"); v != body.end()) {
            if (v->is_number_unsigned()) {
              ref = std::to_string(v->get<uint64_t>());
            } else if (v->is_string() && !v->get<std::string>().empty()) {
              ref = v->get<std::string>();
            } else {
              return error_response(bad_request("\"version\" must be a number", "version"));
            }
          } else if (const auto a = body.find("alias"); a != body.end() && a->is_string()) {
            ref = a->get<std::string>();
          } else {
            return error_response(
                bad_request("name the version: {\"version\": N} or {\"alias\": NAME}", "version"));
          }
          int percent = 100;
          if (const auto p = body.find("percent"); p != body.end()) {
            if (!p->is_number_integer() || p->get<int64_t>() < 1 || p->get<int64_t>() > 100) {
              return error_response(bad_request("\"percent\" must be 1 to 100", "percent"));
            }
            percent = static_cast<int>(p->get<int64_t>());
          }
          auto done = activate(req.path_param("name"), ref, percent,
                               call.principal.empty() ? "an operator" : call.principal);
          if (!done.ok()) return activation_error(done.status());
          return json_response(model_json(*done));
        });
  route("POST", "/admin/models/{name}/rollback", operators, false,
        [this](const HttpRequest& req, const CallContext& call) {
          const std::string name = req.path_param("name");
          const std::optional<ModelTable::ModelView> m = models_.model(name);
          if (!m) return error_response(api_error(not_found("model " + name + " is not served")));
          if (m->previous.empty()) {
            return error_response(
                bad_request("model " + name + " has no previous version to roll back to"));
          }
          auto done = activate(name, m->previous, 100,
                               call.principal.empty() ? "an operator" : call.principal);
          if (!done.ok()) return activation_error(done.status());
          return json_response(model_json(*done));
        });
}

}  // namespace r1
