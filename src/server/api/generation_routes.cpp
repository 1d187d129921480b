#include "server/api/generation_routes.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "obs/log.h"
#include "server/api/choice_run.h"
#include "server/api/errors.h"
#include "server/api/openai_request.h"
#include "server/api/openai_response.h"
#include "server/api/reasoning_token_counter.h"
#include "server/api/stop_matcher.h"
#include "tokenizer/incremental_detokenizer.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Decrements the in-flight count when the request (or its stream) ends.
struct InFlight {
  explicit InFlight(std::atomic<int>* n) : n_(n) {
    if (n_) n_->fetch_add(1);
  }
  ~InFlight() {
    if (n_) n_->fetch_sub(1);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  std::atomic<int>* n_;
};

// A request after parsing and tokenizing, ready for the engine.
struct Job {
  std::string route;
  bool chat = false;
  GenerationOptions opt;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 0;
  bool starts_in_reasoning = false;
  bool logprobs = false;
  int32_t n_top = 0;
  Clock::time_point arrival = Clock::now();
  std::string request_id;
  std::string principal;
  std::string remote_addr;
  std::function<bool()> client_connected;          // may be unset (requests built in tests)
  std::function<void(const CallUsage&)> on_usage;  // the caller's accounting; may be unset
  bool predict = false;                            // answer in /predict's shape
  std::string model, version;                      // the version serving the job
  std::string cache_key;    // set when the answer goes into the response cache
  std::string cache_state;  // for the access log: "hit", "miss", "bypass" or ""
};

ApiError submit_error(const Status& s) {
  if (s.code() == StatusCode::kResourceExhausted) return queue_full(1);
  if (s.code() == StatusCode::kUnavailable) return not_ready(s.message());
  return api_error(s);
}

// Submits the job's n choices; on failure cancels those already submitted.
ApiResult<std::vector<std::unique_ptr<ChoiceRun>>> submit(const ServedModel& m, const Job& job) {
  std::vector<std::unique_ptr<ChoiceRun>> runs;
  const std::string base = make_response_id("gen");
  for (int32_t i = 0; i < job.opt.n; ++i) {
    EngineRequest r;
    r.id = base + "-" + std::to_string(i);
    r.prompt = job.prompt;
    r.sampling = job.opt.sampling;
    if (r.sampling.seed && i > 0) r.sampling.seed = *r.sampling.seed + static_cast<uint64_t>(i);
    r.max_tokens = job.max_tokens;
    r.stop_ids = m.stop_ids;
    r.stop_ids.insert(r.stop_ids.end(), job.opt.stop_token_ids.begin(),
                      job.opt.stop_token_ids.end());
    r.priority = job.opt.priority;
    r.starts_in_reasoning = job.starts_in_reasoning;
    r.think_end_id = m.think_end_id.value_or(-1);
    r.max_reasoning_tokens =
        job.chat ? job.opt.max_reasoning_tokens.value_or(m.default_max_reasoning_tokens) : -1;
    r.budget_close_ids = m.reasoning_close_ids;
    auto stream = m.engine->submit(r);
    if (!stream.ok()) {
      for (auto& run : runs) m.engine->cancel(run->engine_id());
      return submit_error(stream.status());
    }
    runs.push_back(std::make_unique<ChoiceRun>(m, r.id, *stream, job.opt, job.chat,
                                               job.starts_in_reasoning, job.logprobs, job.n_top));
  }
  return runs;
}

Usage usage_of(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs);

AccessLogRecord access_record(const GenerationRoutesContext& ctx, const Job& job, int status) {
  AccessLogRecord rec;
  rec.time = std::chrono::system_clock::now();
  rec.request_id = job.request_id;
  rec.principal = job.principal;
  rec.route = job.route;
  rec.model = ctx.model->name;
  rec.version = ctx.model->version;
  rec.status = status;
  rec.cache = job.cache_state;
  if (ctx.model->gpu != nullptr) {
    if (std::optional<GpuSample> g = ctx.model->gpu->latest()) rec.gpu_memory_used = g->memory_used;
  }
  return rec;
}

// Tells the caller's accounting what the job has used so far: the prompt at
// once, completion tokens as they are generated.
void report_usage(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  if (!job.on_usage || runs.empty()) return;
  const Usage u = usage_of(job, runs);
  job.on_usage(CallUsage{u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, false, job.model,
                         job.version});
}

void record(const GenerationRoutesContext& ctx, const Job& job, int status,
            const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  const ServedModel& m = *ctx.model;
  const auto now = Clock::now();
  int64_t out = 0, reasoning = 0;
  std::optional<double> ttft_ms;
  for (const auto& r : runs) {
    out += r->n_tokens();
    reasoning += r->n_reasoning_tokens();
  }
  if (ctx.metrics) {
    ctx.metrics->inc_requests(job.route, m.name, status);
    if (status != 200 && !runs.empty()) {
      // A stream the client left (499) or a failed step (500): the tokens
      // computed so far were computed all the same. A choice's prompt
      // counts once its first token shows it was processed.
      ModelMetrics& mm = ctx.metrics->model(m.name);
      int64_t n_prefilled = 0;
      for (const auto& r : runs) n_prefilled += r->sampled_any() ? 1 : 0;
      mm.add_prompt_tokens(static_cast<int64_t>(job.prompt.size()) * n_prefilled);
      mm.add_generation_tokens(out);
      mm.add_reasoning_tokens(reasoning);
    }
    if (status == 200) {
      ModelMetrics& mm = ctx.metrics->model(m.name);
      mm.add_prompt_tokens(static_cast<int64_t>(job.prompt.size()) * job.opt.n);
      mm.add_generation_tokens(out);
      mm.add_reasoning_tokens(reasoning);
      mm.observe_e2e_latency(seconds(job.arrival, now));
      if (!runs.empty() && runs[0]->n_tokens() > 0) {
        mm.observe_queue_time(runs[0]->queue_seconds());
        mm.observe_ttft(seconds(job.arrival, runs[0]->first_token()));
        if (runs[0]->n_tokens() > 1) {
          mm.observe_tpot(seconds(runs[0]->first_token(), runs[0]->last_token()) /
                          static_cast<double>(runs[0]->n_tokens() - 1));
        }
      }
    }
  }
  if (!runs.empty() && runs[0]->n_tokens() > 0) {
    ttft_ms = seconds(job.arrival, runs[0]->first_token()) * 1000.0;
  }
  report_usage(job, runs);
  if (ctx.access_log && ctx.access_log->enabled()) {
    AccessLogRecord rec = access_record(ctx, job, status);
    rec.input_length = static_cast<int64_t>(job.prompt.size());
    rec.output_length = out;
    rec.reasoning_length = reasoning;
    rec.ttft_ms = ttft_ms;
    if (ttft_ms) rec.queue_ms = runs[0]->queue_seconds() * 1000.0;
    rec.inference_time_ms = seconds(job.arrival, now) * 1000.0;
    ctx.access_log->write(rec);
  }
}

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

Usage usage_of(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  Usage u;
  u.prompt_tokens = static_cast<int64_t>(job.prompt.size());
  for (const auto& r : runs) {
    u.completion_tokens += r->n_tokens();
    u.reasoning_tokens += r->n_reasoning_tokens();
  }
  return u;
}

// Waits for every choice to finish and builds the whole response.
HttpResponse run_whole(const GenerationRoutesContext& ctx, const Job& job,
                       std::vector<std::unique_ptr<ChoiceRun>> runs) {
  // The connection is polled every 100 ms while tokens arrive: a client that
  // gave up cancels the generation.
  constexpr auto kPollEvery = std::chrono::milliseconds(100);
  auto next_poll = Clock::now() + kPollEvery;
  for (auto& r : runs) {
    while (!r->done()) {
      if (auto e = r->stream().next(kPollEvery)) {
        r->on_event(*e);
        report_usage(job, runs);
      }
      if (Clock::now() < next_poll) continue;
      next_poll = Clock::now() + kPollEvery;
      if (job.client_connected && !job.client_connected()) {
        for (auto& other : runs) {
          if (!other->done()) ctx.model->engine->cancel(other->engine_id());
        }
        record(ctx, job, 499, runs);  // client closed the request
        HttpResponse gone;
        gone.status = 499;
        return gone;
      }
    }
  }
  for (auto& r : runs) {
    if (!r->error().ok()) {
      record(ctx, job, 500, runs);
      return error_response(internal(r->error().message()));
    }
  }
  const ResponseHeader header{make_response_id(job.chat ? "chatcmpl" : "cmpl"), unix_time_now(),
                              job.opt.model};
  const Usage usage = usage_of(job, runs);
  HttpResponse res;
  if (job.predict) {
    res.body = to_json_text(
        nlohmann::json{{"response", runs[0]->content()}, {"reasoning", runs[0]->reasoning()}});
  } else if (job.chat) {
    std::vector<ChatChoice> choices;
    for (size_t i = 0; i < runs.size(); ++i) {
      ChatChoice c;
      c.index = static_cast<int32_t>(i);
      c.content = non_empty(runs[i]->content());
      c.reasoning_content = non_empty(runs[i]->reasoning());
      if (!c.content && !c.reasoning_content) c.content = "";
      c.finish_reason = runs[i]->finish();
      if (job.logprobs) c.logprobs = runs[i]->logprobs();
      choices.push_back(std::move(c));
    }
    res.body = to_json_text(chat_completion_json(header, choices, usage));
  } else {
    std::vector<CompletionChoice> choices;
    for (size_t i = 0; i < runs.size(); ++i) {
      CompletionChoice c;
      c.index = static_cast<int32_t>(i);
      c.text = runs[i]->content();
      c.finish_reason = runs[i]->finish();
      if (job.logprobs) c.logprobs = runs[i]->logprobs();
      choices.push_back(std::move(c));
    }
    res.body = to_json_text(completion_json(header, choices, usage));
  }
  if (!job.cache_state.empty()) res.headers["x-r1serve-cache"] = job.cache_state;
  if (!job.cache_key.empty() && ctx.cache != nullptr) {
    const CachedAnswer answer{res.body, usage.prompt_tokens, usage.completion_tokens,
                              usage.reasoning_tokens};
    if (!ctx.cache->store(job.cache_key, answer) && ctx.metrics) {
      ctx.metrics->model(ctx.model->name).inc_response_cache_errors();
    }
  }
  record(ctx, job, 200, runs);
  return res;
}

// Streams the choices as SSE chunks; cancels everything when the client goes.
HttpResponse run_streamed(const GenerationRoutesContext& ctx, Job job,
                          std::vector<std::unique_ptr<ChoiceRun>> runs) {
  HttpResponse res;
  res.content_type = "text/event-stream";
  res.headers["Cache-Control"] = "no-cache";
  // The runs read from the version's engine: the model is held with them
  // and let go after them (members go in reverse order), whatever order
  // the closure's captures are destroyed in.
  struct Runs {
    std::shared_ptr<const ServedModel> keep;
    std::vector<std::unique_ptr<ChoiceRun>> runs;
  };
  auto shared = std::make_shared<Runs>(Runs{ctx.keep, std::move(runs)});
  auto guard = std::make_shared<InFlight>(ctx.in_flight);
  res.stream = [ctx, job = std::move(job), shared, guard](StreamWriter& w) {
    auto& runs = shared->runs;
    const ResponseHeader header{make_response_id(job.chat ? "chatcmpl" : "cmpl"), unix_time_now(),
                                job.opt.model};
    const bool usage_on = job.opt.include_usage;
    auto cancel_all = [&] {
      for (auto& r : runs) {
        if (!r->done()) ctx.model->engine->cancel(r->engine_id());
      }
    };
    bool ok = true;
    if (job.chat) {
      std::vector<ChatChunkChoice> first;
      for (size_t i = 0; i < runs.size(); ++i) {
        ChatChunkChoice c;
        c.index = static_cast<int32_t>(i);
        c.role = true;
        c.content = "";
        first.push_back(c);
      }
      ok = w.write(sse_event(chat_chunk_json(header, first, usage_on)));
    }
    std::vector<int64_t> offsets(runs.size(), 0);
    const auto wait = std::chrono::milliseconds(runs.size() == 1 ? 200 : 2);
    for (bool all_done = false; ok && !all_done;) {
      all_done = true;
      for (size_t i = 0; i < runs.size() && ok; ++i) {
        ChoiceRun& r = *runs[i];
        if (r.done()) continue;
        all_done = false;
        auto e = r.stream().next(wait);
        if (!e) {
          ok = w.client_connected();
          continue;
        }
        ChoiceDelta d = r.on_event(*e);
        report_usage(job, runs);
        if (!r.error().ok()) {
          ok = w.write(sse_event(error_json(internal(r.error().message()))));
          continue;
        }
        if (d.empty() && !d.finished) continue;
        std::optional<FinishReason> finish;
        if (d.finished) finish = r.finish();
        if (job.chat) {
          ChatChunkChoice c;
          c.index = static_cast<int32_t>(i);
          c.content = non_empty(d.content);
          c.reasoning_content = non_empty(d.reasoning);
          if (!c.content && !c.reasoning_content && !finish) c.content = "";
          c.finish_reason = finish;
          if (job.logprobs) c.logprobs = d.logprobs;
          ok = w.write(sse_event(chat_chunk_json(header, std::span(&c, 1), usage_on)));
        } else {
          CompletionChoice c;
          c.index = static_cast<int32_t>(i);
          c.text = d.content;
          c.finish_reason = finish;
          c.text_offset = offsets[i];
          offsets[i] += static_cast<int64_t>(d.content.size());
          if (job.logprobs) c.logprobs = d.logprobs;
          ok = w.write(sse_event(completion_chunk_json(header, std::span(&c, 1), usage_on)));
        }
      }
    }
    if (!ok) {
      cancel_all();
      record(ctx, job, 499, runs);  // client closed the request
      return;
    }
    if (usage_on) {
      const Usage usage = usage_of(job, runs);
      w.write(sse_event(job.chat ? chat_usage_chunk_json(header, usage)
                                 : completion_usage_chunk_json(header, usage)));
    }
    w.write(sse_done());
    record(ctx, job, 200, runs);
  };
  return res;
}

// The cached answer to `job`, re-dated and with a fresh id, charged to the
// caller like the original (as a cache hit).
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
  if (job.on_usage) {
    job.on_usage(CallUsage{a.prompt_tokens, a.completion_tokens, a.reasoning_tokens, true,
                           job.model, job.version});
  }
  if (ctx.metrics) {
    ctx.metrics->inc_requests(job.route, ctx.model->name, 200);
    ctx.metrics->model(ctx.model->name).inc_response_cache_hits();
  }
  if (ctx.access_log && ctx.access_log->enabled()) {
    AccessLogRecord rec = access_record(ctx, job, 200);
    rec.input_length = a.prompt_tokens;
    rec.output_length = a.completion_tokens;
    rec.reasoning_length = a.reasoning_tokens;
    rec.inference_time_ms = seconds(job.arrival, Clock::now()) * 1000.0;
    ctx.access_log->write(rec);
  }
  return res;
}

// Looks the job up in the response cache when it is cacheable: whole (not
// streamed) and deterministic (greedy, or an explicit seed). The client can
// opt out with Cache-Control: no-store (neither read nor write) or no-cache
// (run it again and refresh the entry). Returns the answer on a hit; on a
// miss leaves job.cache_key set so run_whole stores the answer.
std::optional<HttpResponse> consult_cache(const GenerationRoutesContext& ctx, Job& job,
                                          const HttpRequest& req) {
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
  const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
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

// Checks shared by both routes: model name, prompt room, then runs the job.
HttpResponse run_job(const GenerationRoutesContext& ctx, Job job, const HttpRequest& req) {
  const ServedModel& m = *ctx.model;
  if (!m.answers_to(job.opt.model)) {
    record(ctx, job, 404, {});
    return error_response(model_not_found(job.opt.model));
  }
  job.model = m.name;
  job.version = m.version;
  auto max_tokens = resolve_max_tokens(static_cast<int64_t>(job.prompt.size()), job.opt.max_tokens,
                                       m.context_len, job.opt.max_tokens_param);
  if (!max_tokens.ok()) {
    record(ctx, job, max_tokens.error().http_status, {});
    return error_response(max_tokens.error());
  }
  job.max_tokens = *max_tokens;
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
  if (std::optional<HttpResponse> hit = consult_cache(ctx, job, req)) {
    return versioned(std::move(*hit));
  }
  auto runs = submit(m, job);
  if (!runs.ok()) {
    record(ctx, job, runs.error().http_status, {});
    return error_response(runs.error());
  }
  report_usage(job, *runs);  // the prompt is charged now, completions as they come
  if (job.opt.stream) return versioned(run_streamed(ctx, std::move(job), std::move(runs).value()));
  InFlight guard(ctx.in_flight);
  return versioned(run_whole(ctx, job, std::move(runs).value()));
}

RequestLimits limits_for(const ServedModel& m) {
  RequestLimits l;
  l.n_vocab = m.tokenizer->n_tokens();
  return l;
}

}  // namespace

std::optional<HttpResponse> choose_version(GenerationRoutesContext& ctx, const HttpRequest& req,
                                           const RequestRouting& routing) {
  std::shared_ptr<const ServedModel> chosen;
  if (routing.model) {
    chosen = ctx.models->route(*routing.model, routing.user, req.allowed_models);
  } else {
    // No model named (or no JSON object): the first model's version, whose
    // parse then says what is wrong, or serves /predict.
    chosen = ctx.models->default_version(routing.user);
    if (chosen && !ModelTable::may_see(chosen->name, req.allowed_models)) chosen = nullptr;
  }
  if (!chosen) {
    const std::string named = routing.model.value_or("");
    if (ctx.metrics) {
      ctx.metrics->inc_requests(req.path, "", 404);
    }
    return error_response(model_not_found(named));
  }
  ctx.keep = std::move(chosen);
  ctx.model = ctx.keep.get();
  return std::nullopt;
}

HttpResponse json_response(const nlohmann::json& body, int status) {
  HttpResponse res;
  res.status = status;
  res.body = to_json_text(body);
  return res;
}

HttpResponse error_response(const ApiError& error) {
  HttpResponse res;
  res.status = error.http_status;
  res.body = error_body(error);
  if (error.retry_after_seconds > 0) {
    res.headers["Retry-After"] = std::to_string(error.retry_after_seconds);
  }
  return res;
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

Job job_for(const HttpRequest& req, std::string route) {
  Job job;
  job.route = std::move(route);
  job.request_id = req.request_id;
  job.remote_addr = req.remote_addr;
  job.principal = req.principal;
  job.client_connected = req.client_connected;
  job.on_usage = req.on_usage;
  return job;
}

// The body parsed once, and the version that serves it chosen from it; or
// the response that ends the request (400 for a body that is not a JSON
// object, 404 for a model not served). `ctx` gets the version.
std::variant<nlohmann::json, HttpResponse> open_request(GenerationRoutesContext& ctx,
                                                        const HttpRequest& req,
                                                        const std::string& route) {
  ApiResult<nlohmann::json> body = parse_request_body(req.body);
  const RequestRouting routing = body.ok() ? routing_of(*body) : RequestRouting{std::nullopt, ""};
  if (std::optional<HttpResponse> refused = choose_version(ctx, req, routing)) {
    return std::move(*refused);
  }
  if (!body.ok()) {
    record(ctx, job_for(req, route), body.error().http_status, {});
    return error_response(body.error());
  }
  return std::move(body).value();
}

// A chat request from its parsed body; `predict` answers in /predict's
// shape ({"response", "reasoning"}) instead of OpenAI's.
HttpResponse run_chat(const GenerationRoutesContext& ctx, const HttpRequest& req,
                      const nlohmann::json& body, bool predict) {
  const ServedModel& m = *ctx.model;
  Job job = job_for(req, predict ? "/predict" : "/v1/chat/completions");
  job.chat = true;
  job.predict = predict;
  auto parsed = chat_completion_request_from(body, m.generation, limits_for(m));
  if (!parsed.ok()) {
    record(ctx, job, parsed.error().http_status, {});
    return error_response(parsed.error());
  }
  job.opt = parsed->options;
  if (!m.answers_to(job.opt.model)) {
    record(ctx, job, 404, {});
    return error_response(model_not_found(job.opt.model));
  }
  if (!m.chat_template) return error_response(api_error(m.chat_template_status));
  auto ids = encode_chat_prompt(m, parsed->messages);
  if (!ids.ok()) return error_response(api_error(ids.status(), "messages"));
  job.prompt = std::move(ids).value();
  job.starts_in_reasoning =
      m.chat_template->kind() == ChatTemplateKind::kDeepSeekR1 && m.think_end_id.has_value();
  return run_job(ctx, std::move(job), req);
}

}  // namespace

HttpResponse handle_chat_completions(const GenerationRoutesContext& routes,
                                     const HttpRequest& req) {
  GenerationRoutesContext ctx = routes;
  auto opened = open_request(ctx, req, "/v1/chat/completions");
  if (auto* res = std::get_if<HttpResponse>(&opened)) return std::move(*res);
  return run_chat(ctx, req, std::get<nlohmann::json>(opened), false);
}

HttpResponse handle_completions(const GenerationRoutesContext& routes, const HttpRequest& req) {
  GenerationRoutesContext ctx = routes;
  auto opened = open_request(ctx, req, "/v1/completions");
  if (auto* res = std::get_if<HttpResponse>(&opened)) return std::move(*res);
  const ServedModel& m = *ctx.model;
  Job job = job_for(req, "/v1/completions");
  auto parsed =
      completion_request_from(std::get<nlohmann::json>(opened), m.generation, limits_for(m));
  if (!parsed.ok()) {
    record(ctx, job, parsed.error().http_status, {});
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
  return run_job(ctx, std::move(job), req);
}

// {"text", "max_tokens"?} becomes one user message of a chat request, run
// by the chat path with the version chosen here; the answer comes back in
// /predict's own shape (nothing is serialised to be parsed again).
HttpResponse handle_predict(const GenerationRoutesContext& routes, const HttpRequest& req) {
  GenerationRoutesContext ctx = routes;
  ApiResult<nlohmann::json> parsed = parse_request_body(req.body);
  if (std::optional<HttpResponse> refused = choose_version(
          ctx, req, parsed.ok() ? routing_of(*parsed) : RequestRouting{std::nullopt, ""})) {
    return std::move(*refused);
  }
  if (!parsed.ok()) {
    return error_response(bad_request("the body must be a JSON object {\"text\": ...}"));
  }
  const nlohmann::json& body = *parsed;
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
  return run_chat(ctx, req, chat, true);
}

HttpResponse handle_tokenize(const ServedModel& m, const HttpRequest& req) {
  const auto answer = [&](const std::vector<int32_t>& ids) {
    HttpResponse res;
    res.body = to_json_text(
        nlohmann::json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", m.context_len}});
    return res;
  };
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_discarded() && body.is_object() && body.contains("messages")) {
    // As vLLM: the chat prompt the messages make, as /v1/chat/completions
    // would tokenise it.
    auto parsed = chat_completion_request_from(
        nlohmann::json{{"model", m.name}, {"messages", body["messages"]}}, m.generation,
        RequestLimits{});
    if (!parsed.ok()) return error_response(parsed.error());
    if (!m.chat_template) return error_response(api_error(m.chat_template_status));
    auto ids = encode_chat_prompt(m, parsed->messages);
    if (!ids.ok()) return error_response(api_error(ids.status(), "messages"));
    return answer(*ids);
  }
  if (body.is_discarded() || !body.is_object() || !body.contains("prompt") ||
      !body["prompt"].is_string()) {
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
  return answer(*ids);
}

HttpResponse handle_detokenize(const ServedModel& m, const HttpRequest& req) {
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("tokens") ||
      !body["tokens"].is_array()) {
    return error_response(bad_request("expected {\"tokens\": [ids]}", "tokens"));
  }
  std::vector<int32_t> ids;
  for (const auto& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() >= m.tokenizer->n_tokens()) {
      return error_response(bad_request("tokens must be ids in the vocabulary", "tokens"));
    }
    ids.push_back(t.get<int32_t>());
  }
  HttpResponse res;
  res.body = to_json_text(nlohmann::json{{"prompt", m.tokenizer->decode(ids)}});
  return res;
}

}  // namespace r1
