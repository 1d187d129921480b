#include "server/api/generation_routes.h"

#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "obs/log.h"
#include "server/api/cached_answers.h"
#include "server/api/call_accounting.h"
#include "server/api/engine_submission.h"
#include "server/api/openai_response.h"
#include "server/api/responders.h"
#include "server/api/resumption.h"
#include "server/ops/response_cache.h"

namespace r1 {

namespace {

uint64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// Checks shared by both routes: model name, prompt room, then runs the job.
HttpResponse run_job(const GenerationRoutesContext& ctx, Job job, const HttpRequest& req,
                     const nlohmann::json& body) {
  const ServedModel& m = *ctx.model;
  if (!m.answers_to(job.opt.model)) {
    record_job(ctx, job, 404, {});
    return error_response(model_not_found(job.opt.model));
  }
  job.model = m.name;
  job.version = m.version;
  auto max_tokens = resolve_max_tokens(static_cast<int64_t>(job.prompt.size()), job.opt.max_tokens,
                                       m.context_len, job.opt.max_tokens_param);
  if (!max_tokens.ok()) {
    record_job(ctx, job, max_tokens.error().http_status, {});
    return error_response(max_tokens.error());
  }
  job.max_tokens = *max_tokens;
  if (job.opt.min_tokens > job.max_tokens) {
    const ApiError e = bad_request("min_tokens (" + std::to_string(job.opt.min_tokens) +
                                       ") is more than the " + std::to_string(job.max_tokens) +
                                       " tokens the context leaves for the completion",
                                   "min_tokens");
    record_job(ctx, job, e.http_status, {});
    return error_response(e);
  }
  job.logprobs = job.opt.sampling.logprobs;
  job.n_top = job.opt.sampling.n_top_logprobs;
  if (!job.opt.ignored_fields.empty()) {
    std::string names;
    for (const auto& f : job.opt.ignored_fields) names += (names.empty() ? "" : ", ") + f;
    log_debug("request " + job.request_id + ": ignored fields " + names);
  }
  // Which loaded version answered: NAME@VERSION.
  auto versioned = [&m](HttpResponse res) {
    res.headers["X-R1serve-Model-Version"] = m.version_id();
    return res;
  };
  job.response_id = make_response_id(job.chat ? "chatcmpl" : "cmpl");
  job.created = unix_time_now();
  job.digest = ResponseCache::key_for(m.version_id(), job.route, body);
  job.resumable = ctx.resumption != nullptr && job.opt.n == 1;
  if (job.resumable) {
    job.resume_id = job.request_id;
    job.seed = job.opt.sampling.seed.value_or(random_seed());
  }
  if (job.resumed) {
    // The same request as the one that was checkpointed, or nothing.
    const Checkpoint& c = *job.resumed;
    if (!job.resumable || c.route != job.route || c.digest != job.digest ||
        c.prompt != job.prompt) {
      if (ctx.metrics) ctx.metrics->inc_resumes("refused");
      record_job(ctx, job, 409, {});
      return error_response(conflict("this request differs from the one request " + c.request_id +
                                         " made; resume it with the same route and body",
                                     "resume_mismatch"));
    }
    job.resume_id = c.request_id;
    job.seed = c.seed;
    job.response_id = c.response_id;
    job.created = c.created;
  } else if (std::optional<HttpResponse> hit = consult_cache(ctx, job, req, body)) {
    return versioned(std::move(*hit));
  }
  auto runs = submit_choices(m, job);
  if (!runs.ok()) {
    record_job(ctx, job, runs.error().http_status, {});
    return error_response(runs.error());
  }
  ChoiceDelta replayed;
  if (job.resumed) {
    // The text state of the output so far, and what of it the client lacks.
    ChoiceRun& run = *(*runs)[0];
    replayed = replay_output(run, *job.resumed, job.client_has);
    job.replayed_reasoning = run.n_reasoning_tokens();
    job.call.resumes(job.resume_id);
    if (ctx.metrics) {
      ctx.metrics->inc_resumes("resumed");
      ctx.metrics->add_resume_recomputed_tokens(static_cast<int64_t>(job.resumed->output.size()));
    }
    log_info("request " + job.request_id + " resumes " + job.resume_id + " after " +
             std::to_string(job.resumed->output.size()) + " output tokens");
  }
  report_usage(job, *runs);  // the prompt is charged now, completions as they come
  if (job.opt.stream) {
    return versioned(
        respond_streamed(ctx, std::move(job), std::move(runs).value(), std::move(replayed)));
  }
  InFlight guard(ctx.in_flight);
  return versioned(respond_whole(ctx, job, std::move(runs).value()));
}

RequestLimits limits_for(const ServedModel& m) {
  RequestLimits l;
  l.n_vocab = m.tokenizer->n_tokens();
  return l;
}

}  // namespace

std::optional<HttpResponse> choose_version(GenerationRoutesContext& ctx, const HttpRequest& req,
                                           const CallContext& call, const RequestRouting& routing) {
  std::shared_ptr<const ServedModel> chosen;
  if (routing.model) {
    chosen = ctx.models->route(*routing.model, routing.user, call.allowed_models);
  } else {
    // No model named (or no JSON object): the first model's version, whose
    // parse then says what is wrong, or serves /predict.
    chosen = ctx.models->default_version(routing.user);
    if (chosen && !ModelTable::may_see(chosen->name, call.allowed_models)) chosen = nullptr;
  }
  if (!chosen) {
    if (ctx.metrics) ctx.metrics->inc_requests(req.path, "", "", 404);
    return error_response(model_not_found(routing.model.value_or("")));
  }
  ctx.keep = std::move(chosen);
  ctx.model = ctx.keep.get();
  return std::nullopt;
}

Result<std::vector<int32_t>> encode_chat_prompt(const ServedModel& m,
                                                std::span<const ChatMessage> messages) {
  R1_ASSIGN_OR_RETURN(ChatTemplate::Rendered r, m.chat_template->render_with_ranges(
                                                    messages, /*add_generation_prompt=*/true));
  // The rendered prompt carries its own BOS. Client text is tokenised as
  // text, so it cannot forge the template's markers, unless the server was
  // told to keep Hugging Face's behaviour.
  if (m.special_tokens_in_messages) return m.tokenizer->encode(r.text, false);
  return m.tokenizer->encode_with_literals(r.text, r.client_ranges);
}

namespace {

Job job_for(const HttpRequest& req, const CallContext& call, std::string route) {
  Job job;
  job.route = std::move(route);
  job.request_id = req.request_id;
  job.remote_addr = req.remote_addr;
  job.call = call;
  job.client_connected = req.client_connected;
  return job;
}

// A generation this request resumes (Last-Event-ID or X-R1serve-Resume).
struct Resuming {
  std::optional<Checkpoint> from;
  int64_t client_has = 0;  // output tokens the client has
};

// The body parsed (once), handed to the audit trail, and the version that
// serves it chosen from it. A body that is not a JSON object still routes
// to the default version (so its error is counted there) and gets 400. A
// resumption goes to the version its checkpoint names.
struct Opened {
  std::optional<nlohmann::json> body;
  std::optional<HttpResponse> refused;  // set: the request ends here
  bool bad_body = false;                // refused for the body (400), not the model
  Resuming resuming;
};

// The checkpoint a resumption names, and the version it was made with as
// ctx's; or why it cannot go on here.
std::optional<HttpResponse> open_resumption(GenerationRoutesContext& ctx, const HttpRequest& req,
                                            const CallContext& call, Resuming* out) {
  auto target = resume_target(req.header("Last-Event-ID"), req.header("X-R1serve-Resume"));
  if (!target.ok()) return error_response(api_error(target.status(), "Last-Event-ID"));
  if (!*target) return std::nullopt;
  auto refuse = [&](const char* result, ApiError e) {
    if (ctx.metrics) ctx.metrics->inc_resumes(result);
    return std::optional<HttpResponse>(error_response(e));
  };
  const std::string& id = (*target)->request_id;
  if (ctx.resumption == nullptr) {
    return refuse("refused", bad_request("this server keeps no checkpoints to resume from "
                                         "(serve --checkpoint-store)",
                                         "", "resume_unsupported"));
  }
  auto found = ctx.resumption->load(call.principal, id);
  if (!found.ok()) {
    return refuse("refused",
                  not_ready("the checkpoint store cannot be read: " + found.status().message()));
  }
  if (!*found) {
    ApiError e = api_error(not_found("No generation to resume for request " + id +
                                     ": it finished, its checkpoint expired, it was never "
                                     "checkpointed, or another caller began it."));
    e.code = "resume_not_found";
    return refuse("not_found", e);
  }
  const Checkpoint& c = **found;
  std::shared_ptr<const ServedModel> v =
      ctx.models->route(c.model + "@" + c.version, "", call.allowed_models);
  if (!v || v->version != c.version) {
    return refuse("refused",
                  conflict("request " + id + " was begun by " + c.model + "@" + c.version +
                               ", which this replica does not serve; resume it on "
                               "one that does",
                           "resume_version_not_loaded"));
  }
  ctx.keep = std::move(v);
  ctx.model = ctx.keep.get();
  out->client_has = (*target)->client_has.value_or(c.sent);
  out->from = std::move(**found);
  return std::nullopt;
}

Opened open_request(GenerationRoutesContext& ctx, const HttpRequest& req, const CallContext& call,
                    bool may_resume = true) {
  Opened o;
  ApiResult<nlohmann::json> body = parse_request_body(req.body);
  if (body.ok()) call.body(*body);
  const RequestRouting routing = body.ok() ? routing_of(*body) : RequestRouting{std::nullopt, ""};
  o.refused = choose_version(ctx, req, call, routing);
  if (o.refused) return o;
  if (!body.ok()) {
    o.refused = error_response(body.error());
    o.bad_body = true;
    return o;
  }
  if (may_resume) {
    o.refused = open_resumption(ctx, req, call, &o.resuming);
    if (o.refused) return o;
  }
  o.body = std::move(body).value();
  return o;
}

// A chat request from its parsed body; `predict` answers in /predict's
// shape ({"response", "reasoning"}) instead of OpenAI's.
HttpResponse run_chat(const GenerationRoutesContext& ctx, const HttpRequest& req,
                      const CallContext& call, const nlohmann::json& body, bool predict,
                      Resuming resuming) {
  const ServedModel& m = *ctx.model;
  Job job = job_for(req, call, predict ? "/predict" : "/v1/chat/completions");
  job.resumed = std::move(resuming.from);
  job.client_has = resuming.client_has;
  job.chat = true;
  job.predict = predict;
  auto parsed = chat_completion_request_from(body, m.generation, limits_for(m));
  if (!parsed.ok()) {
    record_job(ctx, job, parsed.error().http_status, {});
    return error_response(parsed.error());
  }
  job.opt = parsed->options;
  if (!m.answers_to(job.opt.model)) {
    record_job(ctx, job, 404, {});
    return error_response(model_not_found(job.opt.model));
  }
  if (!m.chat_template) return error_response(api_error(m.chat_template_status));
  auto ids = encode_chat_prompt(m, parsed->messages);
  if (!ids.ok()) return error_response(api_error(ids.status(), "messages"));
  job.prompt = std::move(ids).value();
  job.starts_in_reasoning =
      m.chat_template->kind() == ChatTemplateKind::kDeepSeekR1 && m.think_end_id.has_value();
  return run_job(ctx, std::move(job), req, body);
}

// {"tokens", "count", "max_model_len"}
HttpResponse tokens_answer(const ServedModel& m, const std::vector<int32_t>& ids) {
  return json_response(
      nlohmann::json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", m.context_len}});
}

}  // namespace

HttpResponse handle_chat_completions(const GenerationRoutesContext& routes, const HttpRequest& req,
                                     const CallContext& call) {
  GenerationRoutesContext ctx = routes;
  Opened o = open_request(ctx, req, call);
  if (o.refused) {
    if (o.bad_body) {
      record_job(ctx, job_for(req, call, "/v1/chat/completions"), o.refused->status, {});
    }
    return std::move(*o.refused);
  }
  return run_chat(ctx, req, call, *o.body, false, std::move(o.resuming));
}

HttpResponse handle_completions(const GenerationRoutesContext& routes, const HttpRequest& req,
                                const CallContext& call) {
  GenerationRoutesContext ctx = routes;
  Opened o = open_request(ctx, req, call);
  Job job = job_for(req, call, "/v1/completions");
  if (o.refused) {
    if (o.bad_body) record_job(ctx, job, o.refused->status, {});
    return std::move(*o.refused);
  }
  const ServedModel& m = *ctx.model;
  job.resumed = std::move(o.resuming.from);
  job.client_has = o.resuming.client_has;
  auto parsed = completion_request_from(*o.body, m.generation, limits_for(m));
  if (!parsed.ok()) {
    record_job(ctx, job, parsed.error().http_status, {});
    return error_response(parsed.error());
  }
  job.opt = parsed->options;
  if (parsed->prompt_text) {
    // Like vLLM: plain text gets the tokenizer's BOS.
    auto ids = m.tokenizer->encode(*parsed->prompt_text, /*add_special_tokens=*/true);
    if (!ids.ok()) return error_response(api_error(ids.status(), "prompt"));
    job.prompt = std::move(ids).value();
  } else {
    job.prompt = parsed->prompt_token_ids;
  }
  return run_job(ctx, std::move(job), req, *o.body);
}

// {"text", "max_tokens"?} becomes one user message of a chat request, run
// by the chat path with the version chosen here; the answer comes back in
// /predict's own shape (nothing is serialised to be parsed again).
HttpResponse handle_predict(const GenerationRoutesContext& routes, const HttpRequest& req,
                            const CallContext& call) {
  GenerationRoutesContext ctx = routes;
  Opened o = open_request(ctx, req, call);
  if (o.refused) {
    if (!o.bad_body) return std::move(*o.refused);
    return error_response(bad_request("the body must be a JSON object {\"text\": ...}"));
  }
  const nlohmann::json& body = *o.body;
  if (!body.contains("text") || !body["text"].is_string()) {
    return error_response(bad_request("\"text\" must be a string", "text"));
  }
  // A bounded answer by default (the chat routes allow the whole context).
  int64_t max_tokens = 1024;
  if (body.contains("max_tokens")) {
    if (!body["max_tokens"].is_number_integer() || body["max_tokens"].get<int64_t>() < 1) {
      return error_response(bad_request("\"max_tokens\" must be a positive integer", "max_tokens"));
    }
    max_tokens = body["max_tokens"].get<int64_t>();
  }
  const nlohmann::json chat = {{"model", ctx.model->version_id()},
                               {"max_tokens", max_tokens},
                               {"messages", {{{"role", "user"}, {"content", body["text"]}}}}};
  return run_chat(ctx, req, call, chat, true, std::move(o.resuming));
}

HttpResponse handle_tokenize(const GenerationRoutesContext& routes, const HttpRequest& req,
                             const CallContext& call) {
  GenerationRoutesContext ctx = routes;
  ctx.metrics = nullptr;  // not a generation: requests_total does not count it
  Opened o = open_request(ctx, req, call, /*may_resume=*/false);
  if (o.refused) {
    if (!o.bad_body) return std::move(*o.refused);
    return error_response(
        bad_request("expected {\"prompt\": string} or {\"messages\": [...]}", "prompt"));
  }
  const ServedModel& m = *ctx.model;
  const nlohmann::json& body = *o.body;
  if (body.contains("messages")) {
    // As vLLM: the chat prompt the messages make, as /v1/chat/completions
    // would tokenise it.
    auto parsed = chat_completion_request_from(
        nlohmann::json{{"model", m.name}, {"messages", body["messages"]}}, m.generation,
        RequestLimits{});
    if (!parsed.ok()) return error_response(parsed.error());
    if (!m.chat_template) return error_response(api_error(m.chat_template_status));
    auto ids = encode_chat_prompt(m, parsed->messages);
    if (!ids.ok()) return error_response(api_error(ids.status(), "messages"));
    return tokens_answer(m, *ids);
  }
  if (!body.contains("prompt") || !body["prompt"].is_string()) {
    return error_response(
        bad_request("expected {\"prompt\": string} or {\"messages\": [...]}", "prompt"));
  }
  bool special = false;
  if (const auto it = body.find("add_special_tokens"); it != body.end()) {
    if (!it->is_boolean()) {
      return error_response(
          bad_request("add_special_tokens must be a boolean", "add_special_tokens"));
    }
    special = it->get<bool>();
  }
  auto ids = m.tokenizer->encode(body["prompt"].get<std::string>(), special);
  if (!ids.ok()) return error_response(api_error(ids.status(), "prompt"));
  return tokens_answer(m, *ids);
}

HttpResponse handle_detokenize(const GenerationRoutesContext& routes, const HttpRequest& req,
                               const CallContext& call) {
  GenerationRoutesContext ctx = routes;
  ctx.metrics = nullptr;  // not a generation: requests_total does not count it
  Opened o = open_request(ctx, req, call, /*may_resume=*/false);
  const auto expected = [] {
    return error_response(bad_request("expected {\"tokens\": [ids]}", "tokens"));
  };
  if (o.refused) return o.bad_body ? expected() : std::move(*o.refused);
  const ServedModel& m = *ctx.model;
  const nlohmann::json& body = *o.body;
  if (!body.contains("tokens") || !body["tokens"].is_array()) return expected();
  std::vector<int32_t> ids;
  for (const auto& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() >= m.tokenizer->n_tokens()) {
      return error_response(bad_request("tokens must be ids in the vocabulary", "tokens"));
    }
    ids.push_back(t.get<int32_t>());
  }
  return json_response(nlohmann::json{{"prompt", m.tokenizer->decode(ids)}});
}

}  // namespace r1
