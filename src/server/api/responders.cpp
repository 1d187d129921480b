#include "server/api/responders.h"

#include <chrono>
#include <optional>
#include <span>
#include <string>

#include "server/api/cached_answers.h"
#include "server/api/call_accounting.h"
#include "server/api/errors.h"
#include "server/api/openai_response.h"

namespace r1 {

namespace {

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

}  // namespace

HttpResponse respond_whole(const GenerationRoutesContext& ctx, const Job& job,
                           std::vector<std::unique_ptr<ChoiceRun>> runs) {
  // The connection is polled every 100 ms while tokens arrive: a client that
  // gave up cancels the generation.
  constexpr auto kPollEvery = std::chrono::milliseconds(100);
  auto next_poll = GenerationClock::now() + kPollEvery;
  for (auto& r : runs) {
    while (!r->done()) {
      if (auto e = r->stream().next(kPollEvery)) {
        r->on_event(*e);
        report_usage(job, runs);
      }
      if (GenerationClock::now() < next_poll) continue;
      next_poll = GenerationClock::now() + kPollEvery;
      if (job.client_connected && !job.client_connected()) {
        for (auto& other : runs) {
          if (!other->done()) ctx.model->engine->cancel(other->engine_id());
        }
        record_job(ctx, job, 499, runs);  // client closed the request
        HttpResponse gone;
        gone.status = 499;
        return gone;
      }
    }
  }
  for (auto& r : runs) {
    if (!r->error().ok()) {
      record_job(ctx, job, 500, runs);
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
  store_answer(
      ctx, job,
      CachedAnswer{res.body, usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens});
  record_job(ctx, job, 200, runs);
  return res;
}

HttpResponse respond_streamed(const GenerationRoutesContext& ctx, Job job,
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
      record_job(ctx, job, 499, runs);  // client closed the request
      return;
    }
    if (usage_on) {
      const Usage usage = usage_of(job, runs);
      w.write(sse_event(job.chat ? chat_usage_chunk_json(header, usage)
                                 : completion_usage_chunk_json(header, usage)));
    }
    w.write(sse_done());
    record_job(ctx, job, 200, runs);
  };
  return res;
}

}  // namespace r1
