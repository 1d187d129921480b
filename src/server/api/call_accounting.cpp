#include "server/api/call_accounting.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace r1 {

namespace {

AccessLogRecord access_record(const GenerationRoutesContext& ctx, const Job& job, int status) {
  AccessLogRecord rec;
  rec.time = std::chrono::system_clock::now();
  rec.request_id = job.request_id;
  rec.principal = job.call.principal;
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

}  // namespace

Usage usage_of(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  Usage u;
  u.prompt_tokens = static_cast<int64_t>(job.prompt.size());
  for (const auto& r : runs) {
    u.completion_tokens += r->n_tokens();
    u.reasoning_tokens += r->n_reasoning_tokens();
  }
  return u;
}

void report_usage(const Job& job, const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  if (!job.call.on_usage || runs.empty()) return;
  Usage u = usage_of(job, runs);
  if (job.resumed) {
    // What earlier replicas' ledgers count is not counted again.
    u.prompt_tokens = std::max<int64_t>(0, u.prompt_tokens - job.resumed->counted_prompt_tokens);
    u.completion_tokens =
        std::max<int64_t>(0, u.completion_tokens - job.resumed->counted_completion_tokens);
    u.reasoning_tokens =
        std::max<int64_t>(0, u.reasoning_tokens - job.resumed->counted_reasoning_tokens);
  }
  job.call.usage(CallUsage{u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, false,
                           job.model, job.version});
}

void record_job(const GenerationRoutesContext& ctx, const Job& job, int status,
                const std::vector<std::unique_ptr<ChoiceRun>>& runs) {
  const ServedModel& m = *ctx.model;
  const auto now = GenerationClock::now();
  int64_t out = 0, reasoning = 0;
  std::optional<double> ttft_ms;
  for (const auto& r : runs) {
    out += r->n_tokens();
    reasoning += r->n_reasoning_tokens();
  }
  // Tokens generated here: a resumed job's checkpoint output was replayed.
  const int64_t replayed = job.resumed ? static_cast<int64_t>(job.resumed->output.size()) : 0;
  const int64_t new_out = std::max<int64_t>(0, out - replayed);
  const int64_t new_reasoning = std::max<int64_t>(0, reasoning - job.replayed_reasoning);
  if (ctx.metrics) {
    ctx.metrics->inc_requests(job.route, m.name, m.version, status);
    if (status != 200 && !runs.empty()) {
      // A stream the client left (499) or a failed step (500): the tokens
      // computed so far were computed all the same. A choice's prompt
      // counts once its first token shows it was processed.
      ModelMetrics& mm = ctx.metrics->model(m.name);
      int64_t n_prefilled = 0;
      for (const auto& r : runs) n_prefilled += r->sampled_any() ? 1 : 0;
      mm.add_prompt_tokens(static_cast<int64_t>(job.prompt.size()) * n_prefilled);
      mm.add_generation_tokens(new_out);
      mm.add_reasoning_tokens(new_reasoning);
    }
    if (status == 200) {
      ModelMetrics& mm = ctx.metrics->model(m.name);
      mm.add_prompt_tokens(static_cast<int64_t>(job.prompt.size()) * job.opt.n);
      mm.add_generation_tokens(new_out);
      mm.add_reasoning_tokens(new_reasoning);
      mm.observe_e2e_latency(seconds_between(job.arrival, now));
      if (!runs.empty() && runs[0]->n_tokens() > 0) {
        mm.observe_queue_time(runs[0]->queue_seconds());
        mm.observe_ttft(seconds_between(job.arrival, runs[0]->first_token()));
        if (runs[0]->n_tokens() > 1) {
          mm.observe_tpot(seconds_between(runs[0]->first_token(), runs[0]->last_token()) /
                          static_cast<double>(runs[0]->n_tokens() - 1));
        }
      }
    }
  }
  if (!runs.empty() && runs[0]->n_tokens() > 0) {
    ttft_ms = seconds_between(job.arrival, runs[0]->first_token()) * 1000.0;
  }
  report_usage(job, runs);
  if (ctx.access_log && ctx.access_log->enabled()) {
    AccessLogRecord rec = access_record(ctx, job, status);
    rec.input_length = static_cast<int64_t>(job.prompt.size());
    rec.output_length = out;
    rec.reasoning_length = reasoning;
    rec.ttft_ms = ttft_ms;
    if (ttft_ms) rec.queue_ms = runs[0]->queue_seconds() * 1000.0;
    rec.inference_time_ms = seconds_between(job.arrival, now) * 1000.0;
    ctx.access_log->write(rec);
  }
}

void record_cache_hit(const GenerationRoutesContext& ctx, const Job& job,
                      const CachedAnswer& answer) {
  job.call.usage(CallUsage{answer.prompt_tokens, answer.completion_tokens, answer.reasoning_tokens,
                           true, job.model, job.version});
  if (ctx.metrics) {
    ctx.metrics->inc_requests(job.route, ctx.model->name, ctx.model->version, 200);
    ctx.metrics->model(ctx.model->name).inc_response_cache_hits();
  }
  if (ctx.access_log && ctx.access_log->enabled()) {
    AccessLogRecord rec = access_record(ctx, job, 200);
    rec.input_length = answer.prompt_tokens;
    rec.output_length = answer.completion_tokens;
    rec.reasoning_length = answer.reasoning_tokens;
    rec.inference_time_ms = seconds_between(job.arrival, GenerationClock::now()) * 1000.0;
    ctx.access_log->write(rec);
  }
}

}  // namespace r1
