#include "server/api/responders.h"

#include <chrono>
#include <optional>
#include <span>
#include <string>

#include "server/api/cached_answers.h"
#include "server/api/call_accounting.h"
#include "server/api/errors.h"
#include "server/api/openai_response.h"
#include "server/api/resumption.h"

namespace r1 {

namespace {

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

// A resumable job's checkpoints as its responder goes: one every N output
// tokens, a final one when the replica is interrupted or the client leaves,
// and none left once the job has ended.
class Checkpointer {
 public:
  Checkpointer(const GenerationRoutesContext& ctx, const Job& job)
      : r_(job.resumable ? ctx.resumption : nullptr), job_(job) {
    if (job.resumed) {
      written_ = true;  // the checkpoint it came from
      last_ = static_cast<int64_t>(job.resumed->output.size());
    }
  }
  // The replica is going away and the job can be resumed elsewhere.
  bool interrupted() const { return r_ != nullptr && !failed_ && r_->interrupted(); }
  // After an event: the periodic checkpoint, when due.
  void tick(const ChoiceRun& run, int64_t sent) {
    if (r_ == nullptr || run.done()) return;
    const int64_t every = r_->options().every_tokens;
    if (every <= 0 || run.n_tokens() - last_ < every) return;
    if (r_->save(job_, run, sent, false)) written_ = true;
    last_ = run.n_tokens();
  }
  // The last checkpoint this replica writes; false when none was written
  // (the job then goes on here).
  bool final(const ChoiceRun& run, int64_t sent) {
    if (r_ == nullptr) return false;
    if (r_->save(job_, run, sent, true)) return written_ = true;
    failed_ = true;
    return false;
  }
  // The job has ended: its checkpoint goes.
  void ended() {
    if (r_ != nullptr && written_) r_->forget(job_);
  }

 private:
  Resumption* r_;
  const Job& job_;
  bool written_ = false;
  bool failed_ = false;
  int64_t last_ = 0;
};

ResponseHeader header_of(const Job& job) {
  return ResponseHeader{job.response_id, job.created, job.opt.model};
}

}  // namespace

HttpResponse respond_whole(const GenerationRoutesContext& ctx, const Job& job,
                           std::vector<std::unique_ptr<ChoiceRun>> runs) {
  Checkpointer ckpt(ctx, job);
  // The connection is polled every 100 ms while tokens arrive: a client that
  // gave up cancels the generation.
  constexpr auto kPollEvery = std::chrono::milliseconds(100);
  auto next_poll = GenerationClock::now() + kPollEvery;
  auto cancel_all = [&] {
    for (auto& r : runs) {
      if (!r->done()) ctx.model->engine->cancel(r->engine_id());
    }
  };
  for (auto& r : runs) {
    while (!r->done()) {
      if (ckpt.interrupted() && ckpt.final(*r, 0)) {
        cancel_all();
        record_job(ctx, job, 503, runs);
        HttpResponse res = error_response(replica_interrupted(
            "Send the same request to another replica with the header X-R1serve-Resume: " +
            job.resume_id + "."));
        res.headers["X-R1serve-Resume"] = job.resume_id;
        return res;
      }
      if (auto e = r->stream().next(kPollEvery)) {
        r->on_event(*e);
        report_usage(job, runs);
        ckpt.tick(*r, 0);
      }
      if (GenerationClock::now() < next_poll) continue;
      next_poll = GenerationClock::now() + kPollEvery;
      if (job.client_connected && !job.client_connected()) {
        cancel_all();
        ckpt.final(*r, 0);                // the client (or a gateway) may resume it
        record_job(ctx, job, 499, runs);  // client closed the request
        HttpResponse gone;
        gone.status = 499;
        return gone;
      }
    }
  }
  ckpt.ended();
  for (auto& r : runs) {
    if (!r->error().ok()) {
      record_job(ctx, job, 500, runs);
      return error_response(internal(r->error().message()));
    }
  }
  const ResponseHeader header = header_of(job);
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
                              std::vector<std::unique_ptr<ChoiceRun>> runs, ChoiceDelta replayed) {
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
  res.stream = [ctx, job = std::move(job), shared, guard,
                replayed = std::move(replayed)](StreamWriter& w) {
    auto& runs = shared->runs;
    const ResponseHeader header = header_of(job);
    const bool usage_on = job.opt.include_usage;
    Checkpointer ckpt(ctx, job);
    // A resumable stream's events carry ids (REQUEST_ID:N, N output tokens
    // sent) for Last-Event-ID.
    auto event = [&](const nlohmann::json& body, int64_t n_tokens) {
      return job.resumable ? sse_event(body, sse_event_id(job.resume_id, n_tokens))
                           : sse_event(body);
    };
    auto cancel_all = [&] {
      for (auto& r : runs) {
        if (!r->done()) ctx.model->engine->cancel(r->engine_id());
      }
    };
    // One choice's delta as a chunk.
    std::vector<int64_t> offsets(runs.size(), 0);
    if (job.resumed) offsets[0] = static_cast<int64_t>(runs[0]->content().size());
    auto chunk = [&](size_t i, const ChoiceDelta& d) {
      ChoiceRun& r = *runs[i];
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
        return event(chat_chunk_json(header, std::span(&c, 1), usage_on), r.n_tokens());
      }
      CompletionChoice c;
      c.index = static_cast<int32_t>(i);
      c.text = d.content;
      c.finish_reason = finish;
      c.text_offset = offsets[i] - static_cast<int64_t>(d.content.size());
      if (job.logprobs) c.logprobs = d.logprobs;
      return event(completion_chunk_json(header, std::span(&c, 1), usage_on), r.n_tokens());
    };
    bool ok = true;
    int64_t sent = job.resumed ? job.client_has : 0;  // output tokens the client has
    if (!job.resumed && job.chat) {
      std::vector<ChatChunkChoice> first;
      for (size_t i = 0; i < runs.size(); ++i) {
        ChatChunkChoice c;
        c.index = static_cast<int32_t>(i);
        c.role = true;
        c.content = "";
        first.push_back(c);
      }
      ok = w.write(event(chat_chunk_json(header, first, usage_on), 0));
    }
    if (ok && job.resumed && (!replayed.empty() || replayed.finished)) {
      // What the client missed of the output before the checkpoint.
      ok = w.write(chunk(0, replayed));
      if (ok) sent = std::max(sent, runs[0]->n_tokens());
    }
    const auto wait = std::chrono::milliseconds(runs.size() == 1 ? 200 : 2);
    bool interrupted = false;
    for (bool all_done = false; ok && !all_done && !interrupted;) {
      all_done = true;
      for (size_t i = 0; i < runs.size() && ok; ++i) {
        ChoiceRun& r = *runs[i];
        if (r.done()) continue;
        all_done = false;
        if (ckpt.interrupted() && ckpt.final(r, sent)) {
          interrupted = true;
          break;
        }
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
        offsets[i] += static_cast<int64_t>(d.content.size());
        if (job.resumed && r.n_tokens() <= job.client_has && e->token) {
          // Regenerated after a hard kill: the client has this token's text.
          if (ctx.metrics) ctx.metrics->add_resume_recomputed_tokens(1);
          d.content.clear();
          d.reasoning.clear();
          d.logprobs.clear();
        }
        if (!d.empty() || d.finished) {
          ok = w.write(chunk(i, d));
          if (ok) sent = std::max(sent, r.n_tokens());
        }
        ckpt.tick(r, sent);
      }
    }
    if (interrupted) {
      cancel_all();
      record_job(ctx, job, 503, runs);
      job.call.settle();  // counted before the client hears where to go on
      const std::string last = sse_event_id(job.resume_id, sent);
      w.write(event(
          error_json(replica_interrupted("Send the same request to another replica with the header "
                                         "Last-Event-ID: " +
                                         last + ".")),
          sent));
      return;
    }
    if (!ok) {
      cancel_all();
      if (runs.size() == 1) ckpt.final(*runs[0], sent);  // the client may come back for it
      record_job(ctx, job, 499, runs);                   // client closed the request
      return;
    }
    ckpt.ended();
    record_job(ctx, job, 200, runs);
    job.call.settle();  // counted before the client reads the end
    if (usage_on) {
      const Usage usage = usage_of(job, runs);
      w.write(event(job.chat ? chat_usage_chunk_json(header, usage)
                             : completion_usage_chunk_json(header, usage),
                    sent));
    }
    w.write(sse_done());
  };
  return res;
}

}  // namespace r1
