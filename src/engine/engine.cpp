#include "engine/engine.h"

#include <algorithm>

#include "core/check.h"
#include "engine/kv_cache/block_table.h"
#include "obs/log.h"

namespace r1 {

namespace {

SchedulerConfig scheduler_config(const Backend& backend, const EngineOptions& o) {
  SchedulerConfig c;
  c.n_blocks = backend.n_kv_blocks();
  c.block_size = backend.block_size();
  c.max_model_len =
      static_cast<int32_t>(std::min<int64_t>(backend.config().max_position_embeddings, INT32_MAX));
  c.max_batched_tokens = o.max_batched_tokens;
  c.max_seqs = o.max_seqs;
  c.enable_prefix_caching = o.enable_prefix_caching;
  c.policy = o.policy;
  c.vocab_size = backend.n_valid_vocab();
  return c;
}

EndReason end_reason_of(RequestStatus s) {
  switch (s) {
    case RequestStatus::kFinishedStopped:
      return EndReason::kStop;
    case RequestStatus::kFinishedLength:
      return EndReason::kLength;
    default:
      return EndReason::kAborted;
  }
}

}  // namespace

Engine::Engine(Backend& backend, const EngineOptions& options)
    : backend_(backend),
      options_(options),
      max_model_len_(scheduler_config(backend, options).max_model_len),
      scheduler_(scheduler_config(backend, options)) {
  if (options_.threaded) thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever did not finish ends now, so no reader waits forever.
  EngineEvent aborted;
  aborted.finished = true;
  aborted.end_reason = EndReason::kAborted;
  for (auto& [id, live] : live_) live.stream->push(aborted);
  for (auto& [req, stream] : inbox_) stream->push(aborted);
}

Result<std::shared_ptr<RequestStream>> Engine::submit(EngineRequest request) {
  R1_RETURN_IF_ERROR(validate(request.sampling));
  if (request.prompt.empty()) return invalid_argument("the prompt is empty");
  if (request.max_tokens < 1) return invalid_argument("max_tokens must be at least 1");
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_tokens;
  if (total > max_model_len_) {
    return out_of_range(std::to_string(request.prompt.size()) + " prompt tokens + " +
                        std::to_string(request.max_tokens) + " max_tokens exceed the context of " +
                        std::to_string(max_model_len_));
  }
  if (request.prompt_logprobs < -1 || request.prompt_logprobs > backend_.n_valid_vocab()) {
    return invalid_argument(
        "prompt_logprobs must be -1 (off) or between 0 and the vocabulary "
        "size " +
        std::to_string(backend_.n_valid_vocab()));
  }
  if (blocks_needed(static_cast<int32_t>(total), backend_.block_size()) > backend_.n_kv_blocks()) {
    return out_of_range("the request needs more KV cache than the server has (" +
                        std::to_string(backend_.n_kv_blocks() * backend_.block_size()) +
                        " tokens)");
  }
  if (!request.resume_output.empty()) {
    // The generator must be the one the output was drawn from.
    if (!request.sampling.seed && !is_greedy(request.sampling)) {
      return invalid_argument("a resumed sampled generation needs the seed it was drawn with");
    }
    int32_t previous = -1;
    for (int32_t i : request.resume_forced) {
      if (i <= previous || i >= static_cast<int32_t>(request.resume_output.size())) {
        return invalid_argument("resume_forced must be ascending indices into resume_output");
      }
      previous = i;
    }
  }
  request.arrival = std::chrono::steady_clock::now();
  auto stream = std::make_shared<RequestStream>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return unavailable("the engine is stopping");
    if (ids_in_use_.count(request.id) != 0) {
      return invalid_argument("request id " + request.id + " is already in use");
    }
    if (stats_.n_waiting + static_cast<int32_t>(inbox_.size()) >= options_.max_queue) {
      return resource_exhausted("the queue is full (" + std::to_string(options_.max_queue) +
                                " waiting requests)");
    }
    ids_in_use_[request.id] = true;
    inbox_.emplace_back(std::move(request), stream);
  }
  cv_.notify_one();
  return stream;
}

void Engine::cancel(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  cv_.notify_one();
}

SchedulerStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] {
        return stop_ || !inbox_.empty() || !cancels_.empty() || scheduler_.has_unfinished();
      });
      if (stop_) return;
    }
    drain_inbox();
    if (scheduler_.has_unfinished()) step();
    publish_stats();
  }
}

bool Engine::run_once() {
  R1_CHECK_MSG(!options_.threaded, "run_once() drives an engine without a thread");
  drain_inbox();
  if (scheduler_.has_unfinished()) step();
  publish_stats();
  std::lock_guard<std::mutex> lock(mu_);
  return scheduler_.has_unfinished() || !inbox_.empty() || !cancels_.empty();
}

void Engine::publish_stats() {
  SchedulerStats s = scheduler_.stats();
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = s;
}

void Engine::drain_inbox() {
  std::vector<std::pair<EngineRequest, std::shared_ptr<RequestStream>>> incoming;
  std::vector<std::string> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& [req, stream] : incoming) {
    RequestSpec spec{req.id,       req.prompt,   req.sampling,        req.max_tokens,
                     req.stop_ids, req.priority, req.prompt_logprobs, req.resume_output};
    Status st = scheduler_.add_request(std::move(spec));
    if (!st.ok()) {
      {
        // Free first: a client that sees the end may reuse the id at once.
        std::lock_guard<std::mutex> lock(mu_);
        ids_in_use_.erase(req.id);
      }
      EngineEvent e;
      e.finished = true;
      e.end_reason = EndReason::kError;
      e.error = st;
      stream->push(e);
      continue;
    }
    const uint64_t fallback_seed = options_.seed + n_submitted_++;
    Live live{stream, Sampler(req.sampling, fallback_seed), std::move(req)};
    live.in_reasoning = live.request.starts_in_reasoning && live.request.think_end_id >= 0;
    const std::string id = live.request.id;
    Live& added = live_.emplace(id, std::move(live)).first->second;
    if (!added.request.resume_output.empty()) {
      replay_resumed(id, added);
      continue;
    }
    // A budget of zero: not one reasoning token; the close comes first.
    if (budget_spent(added)) close_reasoning(id, added);
  }
  for (const std::string& id : cancels) {
    // Unknown ids (already finished) are fine: the client may race the end.
    if (live_.count(id) != 0) (void)scheduler_.abort(id);
  }
}

void Engine::finish_live(const std::string& id, EngineEvent event) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  const std::shared_ptr<RequestStream> stream = it->second.stream;
  live_.erase(it);
  {
    // Free first: a client that sees the end may reuse the id at once.
    std::lock_guard<std::mutex> lock(mu_);
    ids_in_use_.erase(id);
  }
  event.finished = true;
  stream->push(std::move(event));
}

void Engine::track_reasoning(Live& live, int32_t token) {
  if (!live.in_reasoning) return;
  if (token == live.request.think_end_id) {
    live.in_reasoning = false;
    return;
  }
  ++live.n_reasoning;
}

void Engine::step() {
  StepInput input = scheduler_.schedule();
  publish_stats();
  for (const std::string& id : input.aborted) {
    EngineEvent e;
    const auto it = live_.find(id);
    e.end_reason = it != live_.end() ? it->second.abort_reason : EndReason::kAborted;
    finish_live(id, e);
  }
  for (const std::string& id : input.preempted) {
    log_info("request " + id + " preempted (KV cache full); it will be recomputed");
  }
  if (input.empty()) return;
  const auto scheduled_at = std::chrono::steady_clock::now();
  for (const auto& s : input.requests) {
    auto it = live_.find(s.request_id);
    if (it != live_.end() && !it->second.scheduled) {
      it->second.scheduled = true;
      it->second.queue_seconds =
          std::chrono::duration<double>(scheduled_at - it->second.request.arrival).count();
    }
  }

  // What each logit row asks of the backend: the sample rows draw from
  // their request's generator; prompt positions of a scoring request score.
  const size_t n_rows = input.logit_rows.size();
  std::vector<RowRequest> rows(n_rows);
  std::vector<Live*> owners(n_rows);
  std::vector<bool> scores(n_rows, false);
  for (size_t r = 0; r < n_rows; ++r) {
    const ScheduledRequest& s = input.requests[static_cast<size_t>(input.logit_row_owner[r])];
    const Request* req = scheduler_.find(s.request_id);
    Live& live = live_.at(s.request_id);
    owners[r] = &live;
    RowRequest& row = rows[r];
    if (s.sample_row == static_cast<int32_t>(r)) {
      row.sampling = &live.sampler.params();
      row.draw = live.sampler.next_draw();
      row.prompt = req->prompt();
      row.generated = req->output();
    }
    const int32_t pos = input.positions[static_cast<size_t>(input.logit_rows[r])];
    if (live.request.prompt_logprobs >= 0 && pos < req->n_prompt_tokens) {
      scores[r] = true;
      row.score_target = pos + 1 < req->n_prompt_tokens ? req->prompt()[pos + 1] : -1;
      row.score_top = live.request.prompt_logprobs;
    }
  }
  std::vector<RowResult> results(n_rows);
  const auto step_start = std::chrono::steady_clock::now();
  Status st = backend_.step(input.forward_batch(), rows, results);
  if (options_.on_step) {
    // A decode step: every sequence adds one token after its first output
    // (a prompt's last one-token chunk is prefill).
    bool decode = true;
    for (const ScheduledRequest& s : input.requests) {
      const Request* r = scheduler_.find(s.request_id);
      decode = decode && s.n_new_tokens == 1 && r != nullptr && r->n_output_tokens() > 0;
    }
    options_.on_step(
        static_cast<int32_t>(input.requests.size()), input.n_tokens(), decode,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count());
  }
  std::unordered_map<std::string, SampledToken> sampled;  // by request: one row each
  StepOutput output;
  output.sampled.assign(n_rows, 0);  // any valid id keeps a failed row's step consistent
  std::vector<std::pair<std::string, Status>> failed;  // one entry per request
  for (size_t r = 0; r < n_rows && st.ok(); ++r) {
    const std::string& id = input.requests[input.logit_row_owner[r]].request_id;
    if (!results[r].status.ok()) {
      if (std::none_of(failed.begin(), failed.end(),
                       [&](const auto& f) { return f.first == id; })) {
        failed.emplace_back(id, results[r].status);
      }
      continue;
    }
    if (scores[r]) {
      const bool has_target = rows[r].score_target >= 0;
      owners[r]->prompt_scores.push_back(SampledToken{rows[r].score_target,
                                                      has_target ? results[r].target_logprob : 0.0f,
                                                      std::move(results[r].top)});
    }
    if (rows[r].sampling != nullptr) {
      output.sampled[r] = results[r].sampled.id;
      sampled.emplace(id, std::move(results[r].sampled));
    }
  }
  if (!st.ok()) {
    // A batch the backend refused is a bug in the scheduler: fail the
    // requests of this step, keep serving the others.
    log_error("forward step failed: " + st.message());
    for (const auto& s : input.requests) {
      (void)scheduler_.abort(s.request_id);
      EngineEvent e;
      e.end_reason = EndReason::kError;
      e.error = internal_error(st.message());
      finish_live(s.request_id, e);
    }
    return;
  }
  // Failed requests are aborted first, so update() ignores their rows.
  for (const auto& [id, why] : failed) {
    (void)scheduler_.abort(id);
    EngineEvent e;
    e.end_reason = EndReason::kError;
    e.error = internal_error("sampling failed for request " + id + ": " + why.message());
    finish_live(id, e);
  }
  std::vector<RequestUpdate> updates = scheduler_.update(input, output);
  // Before any event goes out: a client that sees its request finish also
  // sees the blocks it freed.
  publish_stats();
  for (const RequestUpdate& u : updates) {
    auto it = live_.find(u.request_id);
    if (it == live_.end()) continue;
    Live& live = it->second;
    EngineEvent e;
    auto s = sampled.find(u.request_id);
    e.token = s != sampled.end() ? s->second : SampledToken{u.token, 0.0f, {}};
    e.n_prompt_tokens = u.n_prompt_tokens;
    e.n_cached_prompt_tokens = u.n_cached_prompt_tokens;
    if (live.first_event) {
      e.queue_seconds = live.queue_seconds;
      e.prompt_logprobs = std::move(live.prompt_scores);
      live.first_event = false;
    }
    track_reasoning(live, u.token);
    if (is_finished(u.status)) {
      e.end_reason = end_reason_of(u.status);
      finish_live(u.request_id, e);
      continue;
    }
    live.stream->push(e);
    if (budget_spent(live)) close_reasoning(u.request_id, live);
  }
}

bool Engine::budget_spent(const Live& live) const {
  const int32_t budget = live.request.max_reasoning_tokens;
  return live.in_reasoning && budget >= 0 && live.n_reasoning >= budget &&
         !live.request.budget_close_ids.empty();
}

void Engine::replay_resumed(const std::string& id, Live& live) {
  const EngineRequest& r = live.request;
  // How far a forced close had got: -1 when none had begun.
  int64_t closed = -1;
  auto begin_close = [&] {
    live.in_reasoning = false;
    closed = 0;
  };
  if (budget_spent(live)) begin_close();  // a budget of zero closes first
  size_t next_forced = 0;
  for (size_t i = 0; i < r.resume_output.size(); ++i) {
    if (next_forced < r.resume_forced.size() &&
        r.resume_forced[next_forced] == static_cast<int32_t>(i)) {
      ++next_forced;
      if (closed >= 0) ++closed;
      continue;
    }
    (void)live.sampler.next_draw();  // the draw this token took (none when greedy)
    track_reasoning(live, r.resume_output[i]);
    if (budget_spent(live)) begin_close();
  }
  const auto& close = r.budget_close_ids;
  if (closed >= 0 && closed < static_cast<int64_t>(close.size())) {
    force_tokens(id, live, std::span<const int32_t>(close).subspan(static_cast<size_t>(closed)));
  }
}

void Engine::close_reasoning(const std::string& id, Live& live) {
  live.in_reasoning = false;
  force_tokens(id, live, live.request.budget_close_ids);
}

void Engine::force_tokens(const std::string& id, Live& live, std::span<const int32_t> ids) {
  const Status appended = scheduler_.append_tokens(id, ids);
  if (appended.ok()) {
    for (int32_t token : ids) {
      EngineEvent forced;
      forced.token = SampledToken{token, 0.0f, {}};
      forced.forced = true;
      live.stream->push(forced);
    }
    return;
  }
  // No room under max_tokens for the close and one answer token: the
  // request has reached its length inside the thinking, and ends there. It
  // ends when the next step applies the abort, after its blocks are freed,
  // like every other end.
  live.abort_reason = EndReason::kLength;
  (void)scheduler_.abort(id);
}

}  // namespace r1
