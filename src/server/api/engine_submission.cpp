#include "server/api/engine_submission.h"

#include <string>

#include "server/api/openai_response.h"

namespace r1 {

namespace {

ApiError submit_error(const Status& s) {
  if (s.code() == StatusCode::kResourceExhausted) return queue_full(1);
  if (s.code() == StatusCode::kUnavailable) return not_ready(s.message());
  return api_error(s);
}

}  // namespace

ApiResult<std::vector<std::unique_ptr<ChoiceRun>>> submit_choices(const ServedModel& m,
                                                                  const Job& job) {
  std::vector<std::unique_ptr<ChoiceRun>> runs;
  const std::string base = make_response_id("gen");
  for (int32_t i = 0; i < job.opt.n; ++i) {
    EngineRequest r;
    r.id = base + "-" + std::to_string(i);
    r.prompt = job.prompt;
    r.sampling = job.opt.sampling;
    if (r.sampling.seed && i > 0) r.sampling.seed = *r.sampling.seed + static_cast<uint64_t>(i);
    r.max_tokens = job.max_tokens;
    // ignore_eos: the model's end-of-sequence ids do not end it; the
    // request's own stop ids still do.
    if (!job.opt.ignore_eos) r.stop_ids = m.stop_ids;
    r.stop_ids.insert(r.stop_ids.end(), job.opt.stop_token_ids.begin(),
                      job.opt.stop_token_ids.end());
    if (job.opt.min_tokens > 0) {
      r.sampling.min_tokens = job.opt.min_tokens;
      r.sampling.min_tokens_ids = r.stop_ids;
    }
    r.priority = job.opt.priority;
    r.starts_in_reasoning = job.starts_in_reasoning;
    r.think_end_id = m.think_end_id.value_or(-1);
    r.max_reasoning_tokens =
        job.chat ? job.opt.max_reasoning_tokens.value_or(m.default_max_reasoning_tokens) : -1;
    r.budget_close_ids = m.reasoning_close_ids;
    if (job.resumable) {
      // A generator another replica can restore: its seed is in the checkpoint.
      r.sampling.seed = job.seed;
    }
    if (job.resumed) {
      for (const SampledToken& t : job.resumed->output) r.resume_output.push_back(t.id);
      r.resume_forced = job.resumed->forced;
    }
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

}  // namespace r1
