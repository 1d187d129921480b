#include "server/api/resumption.h"

#include "obs/log.h"
#include "server/api/call_accounting.h"
#include "server/api/generation_job.h"

namespace r1 {

Resumption::Resumption(std::unique_ptr<CacheStore> store, ResumptionOptions options,
                       Metrics* metrics)
    : store_(std::move(store)), options_(options), metrics_(metrics) {}

bool Resumption::save(const Job& job, const ChoiceRun& run, int64_t sent, bool final) {
  Checkpoint c;
  c.request_id = job.resume_id;
  c.principal = job.call.principal;
  c.route = job.route;
  c.digest = job.digest;
  c.model = job.model;
  c.version = job.version;
  c.response_id = job.response_id;
  c.created = job.created;
  c.prompt = job.prompt;
  c.seed = job.seed;
  c.output = run.output();
  c.forced = run.forced_at();
  c.sent = std::min<int64_t>(sent, static_cast<int64_t>(c.output.size()));
  if (job.resumed) {
    c.counted_prompt_tokens = job.resumed->counted_prompt_tokens;
    c.counted_completion_tokens = job.resumed->counted_completion_tokens;
    c.counted_reasoning_tokens = job.resumed->counted_reasoning_tokens;
  }
  if (final) {
    // This replica's ledger counts the rest of what the job has used.
    c.counted_prompt_tokens = static_cast<int64_t>(job.prompt.size());
    c.counted_completion_tokens = run.n_tokens();
    c.counted_reasoning_tokens = run.n_reasoning_tokens();
  }
  const Status s = store_->put(checkpoint_key(c.principal, c.request_id), c.to_json().dump(),
                               options_.ttl_seconds);
  if (!s.ok()) {
    if (metrics_) metrics_->inc_checkpoint_errors();
    log_warning("checkpoint of request " + job.resume_id + " not written: " + s.message());
    return false;
  }
  if (metrics_) metrics_->inc_checkpoints_written();
  return true;
}

Result<std::optional<Checkpoint>> Resumption::load(const std::string& principal,
                                                   const std::string& request_id) {
  auto got = store_->get(checkpoint_key(principal, request_id));
  if (!got.ok()) {
    if (metrics_) metrics_->inc_checkpoint_errors();
    return got.status();
  }
  if (!got->has_value()) return std::optional<Checkpoint>();
  const nlohmann::json j = nlohmann::json::parse(**got, nullptr, false);
  auto c = Checkpoint::from_json(j);
  if (!c.ok()) {
    if (metrics_) metrics_->inc_checkpoint_errors();
    return data_loss("the checkpoint of request " + request_id +
                     " is damaged: " + c.status().message());
  }
  // The key already binds the principal; a mismatch is another writer's value.
  if (c->principal != principal || c->request_id != request_id) {
    return std::optional<Checkpoint>();
  }
  return std::optional<Checkpoint>(std::move(c).value());
}

void Resumption::forget(const Job& job) {
  if (Status s = store_->remove(checkpoint_key(job.call.principal, job.resume_id)); !s.ok()) {
    log_warning("checkpoint of request " + job.resume_id + " not removed: " + s.message());
  }
}

ChoiceDelta replay_output(ChoiceRun& run, const Checkpoint& from, int64_t client_has) {
  ChoiceDelta pending;
  size_t next_forced = 0;
  for (size_t i = 0; i < from.output.size(); ++i) {
    EngineEvent e;
    e.token = from.output[i];
    if (next_forced < from.forced.size() && from.forced[next_forced] == static_cast<int32_t>(i)) {
      e.forced = true;
      ++next_forced;
    }
    e.n_prompt_tokens = static_cast<int32_t>(from.prompt.size());
    ChoiceDelta d = run.on_event(e);
    if (static_cast<int64_t>(i) + 1 <= client_has) continue;
    pending.reasoning += d.reasoning;
    pending.content += d.content;
    pending.logprobs.insert(pending.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
    pending.finished = pending.finished || d.finished;
  }
  return pending;
}

}  // namespace r1
