#include "server/api/cached_answers.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "server/api/call_accounting.h"
#include "server/api/openai_response.h"

namespace r1 {

namespace {

// The cached answer to `job`, re-dated and with a fresh id.
HttpResponse answer_from_cache(const GenerationRoutesContext& ctx, const Job& job,
                               const CachedAnswer& a) {
  nlohmann::json body = nlohmann::json::parse(a.body, nullptr, false);
  if (body.is_object() && !job.predict) {
    body["id"] = make_response_id(job.chat ? "chatcmpl" : "cmpl");
    body["created"] = unix_time_now();
  }
  HttpResponse res;
  res.body = body.is_discarded() ? a.body : to_json_text(body);
  res.headers["x-r1serve-cache"] = "hit";
  record_cache_hit(ctx, job, a);
  return res;
}

}  // namespace

std::optional<HttpResponse> consult_cache(const GenerationRoutesContext& ctx, Job& job,
                                          const HttpRequest& req, const nlohmann::json& body) {
  if (ctx.cache == nullptr || job.opt.stream) return std::nullopt;
  const bool deterministic =
      job.opt.sampling.temperature < 1e-5f || job.opt.sampling.seed.has_value();
  if (!deterministic) return std::nullopt;
  std::string cc = req.header("Cache-Control");
  std::transform(cc.begin(), cc.end(), cc.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool no_store = cc.find("no-store") != std::string::npos;
  const bool no_cache = cc.find("no-cache") != std::string::npos;
  if (no_store) {
    job.cache_state = "bypass";
    return std::nullopt;
  }
  job.cache_key = ResponseCache::key_for(ctx.model->version_id(), job.route, body);
  if (no_cache) {
    job.cache_state = "bypass";
    return std::nullopt;
  }
  ModelMetrics* mm = ctx.metrics ? &ctx.metrics->model(ctx.model->name) : nullptr;
  const ResponseCache::Lookup found = ctx.cache->lookup(job.cache_key);
  if (found.error && mm) mm->inc_response_cache_errors();
  if (found.answer) {
    job.cache_state = "hit";
    return answer_from_cache(ctx, job, *found.answer);
  }
  job.cache_state = "miss";
  if (mm) mm->inc_response_cache_misses();
  return std::nullopt;
}

void store_answer(const GenerationRoutesContext& ctx, const Job& job, const CachedAnswer& answer) {
  if (job.cache_key.empty() || ctx.cache == nullptr) return;
  if (!ctx.cache->store(job.cache_key, answer) && ctx.metrics) {
    ctx.metrics->model(ctx.model->name).inc_response_cache_errors();
  }
}

}  // namespace r1
