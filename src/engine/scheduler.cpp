#include "engine/scheduler.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/check.h"

namespace r1 {

namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

Status check_ids(std::span<const int32_t> ids, int32_t vocab_size, std::string_view what) {
  if (vocab_size <= 0) return ok_status();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return invalid_argument(std::string(what) + " token id " + num(id) +
                              " is not in the vocabulary of " + num(vocab_size));
    }
  }
  return ok_status();
}

const SchedulerConfig& checked(const SchedulerConfig& c) {
  R1_CHECK_MSG(validate(c).ok(), "invalid SchedulerConfig: call validate() first");
  return c;
}

}  // namespace

Status validate(const SchedulerConfig& c) {
  if (c.n_blocks < 1)
    return invalid_argument("KV cache: n_blocks must be >= 1, got " + num(c.n_blocks));
  if (c.block_size < 1) {
    return invalid_argument("KV cache: block_size must be >= 1, got " + num(c.block_size));
  }
  if (static_cast<int64_t>(c.n_blocks) * c.block_size > std::numeric_limits<int32_t>::max()) {
    return invalid_argument("KV cache: n_blocks * block_size must fit int32 slot ids");
  }
  if (c.max_model_len < 1) {
    return invalid_argument("max_model_len must be >= 1, got " + num(c.max_model_len));
  }
  if (c.max_batched_tokens < 1) {
    return invalid_argument("max_batched_tokens must be >= 1, got " + num(c.max_batched_tokens));
  }
  if (c.max_seqs < 1) return invalid_argument("max_seqs must be >= 1, got " + num(c.max_seqs));
  if (c.vocab_size < 0) return invalid_argument("vocab_size must be >= 0");
  return ok_status();
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(checked(config)),
      kv_(config_.n_blocks, config_.block_size, config_.enable_prefix_caching,
          config_.prefix_hash_seed) {}

Status Scheduler::check_admissible(const RequestSpec& spec) const {
  if (spec.id.empty()) return invalid_argument("request id is empty");
  if (requests_.count(spec.id)) {
    return invalid_argument("request id '" + spec.id + "' is already in use");
  }
  if (spec.prompt.empty()) return invalid_argument("the prompt has no tokens");
  if (spec.max_tokens < 1) {
    return invalid_argument("max_tokens must be at least 1, got " + num(spec.max_tokens));
  }
  R1_RETURN_IF_ERROR(check_ids(spec.prompt, config_.vocab_size, "prompt"));
  R1_RETURN_IF_ERROR(check_ids(spec.output, config_.vocab_size, "resumed output"));
  R1_RETURN_IF_ERROR(check_ids(spec.stop_ids, config_.vocab_size, "stop"));
  if (static_cast<int64_t>(spec.output.size()) >= spec.max_tokens) {
    return invalid_argument("the resumed output (" + num(static_cast<int64_t>(spec.output.size())) +
                            " tokens) leaves no room under max_tokens " + num(spec.max_tokens));
  }
  for (int32_t t : spec.output) {
    if (std::find(spec.stop_ids.begin(), spec.stop_ids.end(), t) != spec.stop_ids.end()) {
      return invalid_argument("the resumed output holds a stop id: that generation had ended");
    }
  }
  if (!spec.output.empty() && spec.prompt_logprobs >= 0) {
    return invalid_argument("a resumed generation cannot score its prompt");
  }
  R1_RETURN_IF_ERROR(validate(spec.sampling));
  if (spec.prompt_logprobs < -1 ||
      (config_.vocab_size > 0 && spec.prompt_logprobs > config_.vocab_size)) {
    return invalid_argument(
        "prompt_logprobs must be -1 (off) or between 0 and the vocabulary "
        "size, got " +
        num(spec.prompt_logprobs));
  }
  const int64_t total = static_cast<int64_t>(spec.prompt.size()) + spec.max_tokens;
  if (total > config_.max_model_len) {
    return out_of_range("this model's maximum context length is " + num(config_.max_model_len) +
                        " tokens, the request asks for " + num(total) + " (" +
                        num(static_cast<int64_t>(spec.prompt.size())) + " in the prompt + " +
                        num(spec.max_tokens) + " max_tokens)");
  }
  const int64_t blocks = (total + config_.block_size - 1) / config_.block_size;
  if (blocks > config_.n_blocks) {
    return out_of_range("the request needs " + num(total) + " tokens of KV cache (" + num(blocks) +
                        " blocks), more than the whole cache of " +
                        num(static_cast<int64_t>(config_.n_blocks) * config_.block_size) +
                        " tokens; lower max_tokens or shorten the prompt");
  }
  return ok_status();
}

Status Scheduler::add_request(RequestSpec spec) {
  R1_RETURN_IF_ERROR(check_admissible(spec));
  auto request = std::make_unique<Request>(std::move(spec), next_arrival_++);
  Request* r = request.get();
  if (kv_.prefix_caching()) kv_.extend_hashes(r->tokens, r->block_hashes);
  requests_.emplace(r->id, std::move(request));
  enqueue(r, /*front=*/false);
  return ok_status();
}

Status Scheduler::abort(std::string_view request_id) {
  auto it = requests_.find(std::string(request_id));
  if (it == requests_.end()) {
    return not_found("no live request '" + std::string(request_id) + "'");
  }
  Request* r = it->second.get();
  if (!r->abort_requested) {
    r->abort_requested = true;
    pending_aborts_.push_back(r->id);
  }
  return ok_status();
}

Status Scheduler::append_tokens(std::string_view request_id, std::span<const int32_t> tokens) {
  auto it = requests_.find(std::string(request_id));
  if (it == requests_.end() || it->second->abort_requested) {
    return not_found("no live request '" + std::string(request_id) + "'");
  }
  Request* r = it->second.get();
  R1_RETURN_IF_ERROR(check_ids(tokens, config_.vocab_size, "forced"));
  if (static_cast<int64_t>(r->n_output_tokens()) + static_cast<int64_t>(tokens.size()) >=
      r->max_tokens) {
    return out_of_range("request '" + r->id + "': " + num(static_cast<int64_t>(tokens.size())) +
                        " forced tokens leave no room under max_tokens " + num(r->max_tokens));
  }
  r->tokens.insert(r->tokens.end(), tokens.begin(), tokens.end());
  if (kv_.prefix_caching()) kv_.extend_hashes(r->tokens, r->block_hashes);
  return ok_status();
}

const Request* Scheduler::find(std::string_view request_id) const {
  auto it = requests_.find(std::string(request_id));
  return it == requests_.end() ? nullptr : it->second.get();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.n_running = static_cast<int32_t>(running_.size());
  s.n_waiting = static_cast<int32_t>(waiting_.size());
  s.kv_usage = kv_.pool().usage();
  s.n_free_blocks = kv_.pool().n_free();
  s.n_blocks = kv_.pool().n_blocks();
  s.n_preemptions = n_preemptions_;
  s.prefix_cache_queries = prefix_queries_;
  s.prefix_cache_hits = prefix_hits_;
  return s;
}

bool Scheduler::runs_before(const Request& a, const Request& b) const {
  if (config_.policy == SchedulingPolicy::kPriority && a.priority != b.priority) {
    return a.priority < b.priority;
  }
  return a.arrival < b.arrival;
}

void Scheduler::enqueue(Request* r, bool front) {
  if (config_.policy == SchedulingPolicy::kPriority) {
    // Sorted by (priority, arrival); a preempted request goes back to its
    // place, ahead of everything that arrived after it at its priority.
    auto pos = std::upper_bound(
        waiting_.begin(), waiting_.end(), r,
        [this](const Request* a, const Request* b) { return runs_before(*a, *b); });
    waiting_.insert(pos, r);
  } else if (front) {
    waiting_.push_front(r);
  } else {
    waiting_.push_back(r);
  }
}

size_t Scheduler::pick_victim(size_t from) const {
  R1_CHECK(from < running_.size());
  size_t victim = from;
  for (size_t i = from + 1; i < running_.size(); ++i) {
    if (runs_before(*running_[victim], *running_[i])) victim = i;
  }
  return victim;
}

bool Scheduler::make_room_for(const Request& head, std::vector<Planned>& planned, int32_t& budget,
                              StepInput& step) {
  if (config_.policy != SchedulingPolicy::kPriority || running_.empty()) return false;
  const size_t victim = pick_victim(0);
  Request* v = running_[victim];
  // Strictly lower priority only: equal priorities keep FCFS, and a victim
  // never preempts its preemptor back.
  if (v->priority <= head.priority) return false;
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(victim));
  auto it = std::find_if(planned.begin(), planned.end(),
                         [v](const Planned& p) { return p.request == v; });
  if (it != planned.end()) {
    budget += it->n_new_tokens;
    planned.erase(it);
  }
  preempt(v);
  step.preempted.push_back(v->id);
  return true;
}

void Scheduler::preempt(Request* r) {
  kv_.free(r->table);
  r->n_computed_tokens = 0;
  r->status = RequestStatus::kPreempted;
  ++r->n_preemptions;
  ++n_preemptions_;
  enqueue(r, /*front=*/true);
}

void Scheduler::finish(Request* r, RequestStatus status) {
  R1_CHECK(is_finished(status));
  kv_.free(r->table);
  r->status = status;
}

void Scheduler::apply_aborts(StepInput& step) {
  for (const std::string& id : pending_aborts_) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;  // finished before the abort took effect
    Request* r = it->second.get();
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r), waiting_.end());
    running_.erase(std::remove(running_.begin(), running_.end(), r), running_.end());
    finish(r, RequestStatus::kFinishedAborted);
    step.aborted.push_back(id);
    requests_.erase(it);
  }
  pending_aborts_.clear();
}

StepInput Scheduler::schedule() {
  StepInput step;
  apply_aborts(step);

  // Capacity first: who runs and with how many tokens, blocks allocated.
  std::vector<Planned> planned;
  int32_t budget = config_.max_batched_tokens;
  bool preempted_any = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* r = running_[i];
    const int32_t n_new = std::min(r->n_uncomputed(), budget);
    if (n_new <= 0) {  // awaiting the token of a step not yet updated
      ++i;
      continue;
    }
    bool fits = false;
    for (;;) {
      if (kv_.allocate(r->table, {}, r->n_computed_tokens + n_new).ok()) {
        fits = true;
        break;
      }
      const size_t victim = pick_victim(i);
      Request* v = running_[victim];
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(victim));
      preempt(v);
      step.preempted.push_back(v->id);
      preempted_any = true;
      if (victim == i) break;
    }
    if (!fits) break;  // r preempted itself: everything after it is newer
    planned.push_back({r, n_new});
    budget -= n_new;
    ++i;
  }
  // Admission, in queue order, only when no running request lacked blocks
  // (they would be preempted right back) and while the head fits.
  while (!preempted_any && !waiting_.empty() && budget > 0) {
    Request* r = waiting_.front();
    R1_DCHECK(!r->abort_requested);  // apply_aborts emptied the queue of them
    if (static_cast<int32_t>(running_.size()) >= config_.max_seqs) {
      if (make_room_for(*r, planned, budget, step)) continue;
      break;
    }
    // A prompt still to be scored is computed whole: cached blocks have no logits.
    const bool scoring = r->prompt_logprobs >= 0 && r->n_prompt_scored < r->n_prompt_tokens;
    const std::vector<int32_t> prefix =
        scoring ? std::vector<int32_t>{} : kv_.find_cached_prefix(r->block_hashes, r->n_tokens());
    const int32_t n_cached = static_cast<int32_t>(prefix.size()) * config_.block_size;
    const int32_t n_new = std::min(r->n_tokens() - n_cached, budget);
    if (!kv_.allocate(r->table, prefix, n_cached + n_new).ok()) {
      if (make_room_for(*r, planned, budget, step)) continue;
      break;
    }
    waiting_.pop_front();
    if (!r->admitted_once) {
      // The metric counts first admissions only: a preempted request finding
      // its own blocks again is not prefix reuse between requests.
      r->admitted_once = true;
      r->n_cached_prompt_tokens = n_cached;
      if (kv_.prefix_caching()) {
        prefix_queries_ += r->n_tokens();
        prefix_hits_ += n_cached;
      }
    }
    r->n_computed_tokens = n_cached;
    r->status = RequestStatus::kRunning;
    running_.push_back(r);
    planned.push_back({r, n_new});
    budget -= n_new;
  }
  return lay_out(planned, std::move(step));
}

StepInput Scheduler::lay_out(const std::vector<Planned>& planned, StepInput step) const {
  const int32_t bs = config_.block_size;
  int32_t max_blocks = 1;
  int32_t n_tokens = 0;
  for (const Planned& p : planned) {
    max_blocks = std::max(max_blocks, static_cast<int32_t>(p.request->table.blocks.size()));
    n_tokens += p.n_new_tokens;
  }
  step.max_blocks_per_seq = max_blocks;
  step.token_ids.reserve(static_cast<size_t>(n_tokens));
  step.positions.reserve(static_cast<size_t>(n_tokens));
  step.slot_mapping.reserve(static_cast<size_t>(n_tokens));
  step.query_start.reserve(planned.size() + 1);
  step.query_start.push_back(0);
  step.block_tables.assign(planned.size() * static_cast<size_t>(max_blocks), -1);
  for (size_t s = 0; s < planned.size(); ++s) {
    Request* r = planned[s].request;
    const int32_t first = r->n_computed_tokens;
    const int32_t end = first + planned[s].n_new_tokens;
    R1_CHECK(end <= r->n_tokens());
    const bool sample = end == r->n_tokens();
    const int32_t score_end = r->prompt_logprobs >= 0 ? std::min(end, r->n_prompt_tokens) : 0;
    for (int32_t p = first; p < end; ++p) {
      // A score row; the last token's row is pushed below when it samples.
      if (p >= r->n_prompt_scored && p < score_end && !(sample && p == end - 1)) {
        step.logit_rows.push_back(static_cast<int32_t>(step.token_ids.size()));
        step.logit_row_owner.push_back(static_cast<int32_t>(s));
      }
      step.token_ids.push_back(r->tokens[static_cast<size_t>(p)]);
      step.positions.push_back(p);
      step.slot_mapping.push_back(slot_for(r->table, p, bs));
    }
    r->n_prompt_scored = std::max(r->n_prompt_scored, score_end);
    step.query_start.push_back(static_cast<int32_t>(step.token_ids.size()));
    std::copy(r->table.blocks.begin(), r->table.blocks.end(),
              step.block_tables.begin() + static_cast<std::ptrdiff_t>(s * max_blocks));
    int32_t sample_row = -1;
    if (sample) {
      sample_row = static_cast<int32_t>(step.logit_rows.size());
      step.logit_rows.push_back(static_cast<int32_t>(step.token_ids.size()) - 1);
      step.logit_row_owner.push_back(static_cast<int32_t>(s));
    }
    step.requests.push_back({r->id, first, planned[s].n_new_tokens, sample, sample_row});
    // The step's KV counts as computed from here on (vLLM v1): a chunk is
    // never planned twice, and the next step continues after it.
    r->n_computed_tokens = end;
  }
  return step;
}

std::vector<RequestUpdate> Scheduler::update(const StepInput& input, const StepOutput& output) {
  R1_CHECK_MSG(output.sampled.size() == input.logit_rows.size(),
               "step output must hold one token per logit row");
  std::vector<RequestUpdate> updates;
  updates.reserve(output.sampled.size());
  bool any_finished = false;
  for (const ScheduledRequest& s : input.requests) {
    const int32_t token = s.sample ? output.sampled[static_cast<size_t>(s.sample_row)] : -1;
    auto it = requests_.find(s.request_id);
    if (it == requests_.end()) continue;
    Request* r = it->second.get();
    if (r->abort_requested || r->status != RequestStatus::kRunning) continue;
    if (s.sample) {
      R1_CHECK_MSG(token >= 0, "sampled token id must be >= 0");
      r->tokens.push_back(token);
      if (kv_.prefix_caching()) kv_.extend_hashes(r->tokens, r->block_hashes);
    }
    kv_.cache_full_blocks(r->table, r->block_hashes, r->n_computed_tokens);
    if (!s.sample) continue;
    RequestStatus status = RequestStatus::kRunning;
    if (std::find(r->stop_ids.begin(), r->stop_ids.end(), token) != r->stop_ids.end()) {
      status = RequestStatus::kFinishedStopped;
    } else if (r->n_output_tokens() >= r->max_tokens || r->n_tokens() >= config_.max_model_len) {
      status = RequestStatus::kFinishedLength;
    }
    if (is_finished(status)) {
      finish(r, status);
      any_finished = true;
    }
    updates.push_back({r->id, token, status, r->n_prompt_tokens, r->n_output_tokens(),
                       r->n_cached_prompt_tokens});
  }
  if (any_finished) {
    std::erase_if(running_, [](const Request* r) { return is_finished(r->status); });
    std::erase_if(requests_, [](const auto& kv) { return is_finished(kv.second->status); });
  }
  return updates;
}

}  // namespace r1
