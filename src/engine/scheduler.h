// The continuous-batching scheduler (vLLM v1's rule): there is no prefill
// phase and no decode phase, only each request's n_computed_tokens catching up
// to its n_tokens within a per-step token budget. Running requests go first
// (a decode needs one token; a resumed or forced chunk more), then waiting
// requests in order (FCFS, or priority then arrival), each taking
// min(what it lacks, budget left): chunked prefill falls out of that.
//
// Capacity is decided before the step is laid out (TensorRT-LLM style): for
// each candidate the KV blocks its tokens need are allocated first, reusing
// cached prefix blocks; a running request that cannot grow preempts, by
// recompute, the newest running request not yet planned (it may be itself);
// a waiting request that does not fit stops admission (no overtaking), except
// that under the priority policy it first preempts running requests of
// strictly lower priority, lowest first, until it fits. Only then are the
// flat batch arrays built.
//
// The engine thread drives it: add_request / abort as clients ask, then
// every step schedule() -> model forward + sampling -> update(). Owns every
// live request and the KV cache bookkeeping. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/kv_cache/kv_cache_manager.h"
#include "engine/request.h"
#include "engine/step_plan.h"

namespace r1 {

enum class SchedulingPolicy {
  kFcfs,      // arrival order; RequestSpec::priority ignored
  kPriority,  // lower priority value first, then arrival
};

struct SchedulerConfig {
  int32_t n_blocks = 0;               // KV blocks in the cache
  int32_t block_size = 16;            // tokens per block
  int32_t max_model_len = 0;          // context: prompt + max_tokens at most
  int32_t max_batched_tokens = 2048;  // tokens per step (--max-batched-tokens)
  int32_t max_seqs = 256;             // running requests at most (--max-seqs)
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  bool enable_prefix_caching = true;
  uint64_t prefix_hash_seed = 0;  // salts every block key (block_hash.h)
  int32_t vocab_size = 0;         // prompt and stop ids must be below it; 0 = unchecked
};

// INVALID_ARGUMENT naming the first field out of range.
Status validate(const SchedulerConfig& config);

// The numbers behind the metrics (DESIGN.md §6).
struct SchedulerStats {
  int32_t n_running = 0;
  int32_t n_waiting = 0;  // preempted requests included
  double kv_usage = 0;    // kv_cache_usage_ratio: blocks in use / all blocks
  int32_t n_free_blocks = 0;
  int32_t n_blocks = 0;
  int64_t n_preemptions = 0;         // num_preemptions_total
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up (tokens)
  int64_t prefix_cache_hits = 0;     // of which found cached (tokens)
};

class Scheduler {
 public:
  // Precondition: validate(config).ok().
  explicit Scheduler(const SchedulerConfig& config);

  // Whether `spec` could ever run, without queueing it: INVALID_ARGUMENT for
  // an empty or reused id, an empty prompt, max_tokens < 1, token or stop ids
  // outside the vocabulary, bad sampling parameters; OUT_OF_RANGE when prompt
  // + max_tokens exceeds the context or needs more KV blocks than the whole
  // cache holds (retrying cannot help, so not RESOURCE_EXHAUSTED).
  Status check_admissible(const RequestSpec& spec) const;

  // check_admissible, then queues the request (WAITING).
  Status add_request(RequestSpec spec);

  // Cancels a live request. Deferred: the request stays where it is (and
  // its blocks stay held, as a step in flight may still write them) until
  // the next schedule(), which frees its blocks, drops it and lists it in
  // StepInput::aborted; update() ignores tokens sampled for it meanwhile.
  // NOT_FOUND for an unknown or already finished id; aborting twice is ok.
  Status abort(std::string_view request_id);

  // Plans the next step; empty when nothing can run. Every scheduled
  // request's n_computed_tokens already counts the step's tokens on return.
  // Call update() with the step's output before the next schedule(); if the
  // forward fails, abort the step's requests instead.
  StepInput schedule();

  // Applies a step's sampled tokens (output.sampled[k] for
  // input.logit_rows[k]): appends each to its request, finishes requests on
  // a stop id (FINISHED_STOPPED) or at max_tokens (FINISHED_LENGTH), frees
  // finished requests' blocks (last block first) and drops them, and caches
  // newly computed full blocks. Returns one update per token appended.
  std::vector<RequestUpdate> update(const StepInput& input, const StepOutput& output);

  // Appends tokens the engine forces into a request's output (e.g. the
  // closing "</think>" of a reasoning budget); they are computed in later
  // steps like a prompt chunk, and the sample after the last of them is the
  // request's next token. Call it between update() and the next schedule().
  // OUT_OF_RANGE, appending nothing, when they would leave no room for one
  // more sampled token under max_tokens; NOT_FOUND for an unknown or aborted
  // id; INVALID_ARGUMENT for ids outside the vocabulary.
  Status append_tokens(std::string_view request_id, std::span<const int32_t> tokens);

  // A live request (waiting, running or preempted), nullptr otherwise.
  const Request* find(std::string_view request_id) const;
  bool has_unfinished() const { return !requests_.empty(); }
  SchedulerStats stats() const;
  const KvCacheManager& kv_cache() const { return kv_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  struct Planned {
    Request* request;
    int32_t n_new_tokens;
  };

  void apply_aborts(StepInput& step);
  // Frees a running request's blocks and queues it to recompute.
  void preempt(Request* request);
  void enqueue(Request* request, bool front);
  // The running request, among running_[from..], that preemption takes.
  size_t pick_victim(size_t from) const;
  // Priority policy: preempts the lowest-priority running request when its
  // priority is strictly lower than `head`'s (it leaves this step's plan and
  // gives its tokens back to `budget`). False when nothing may be taken.
  bool make_room_for(const Request& head, std::vector<Planned>& planned, int32_t& budget,
                     StepInput& step);
  bool runs_before(const Request& a, const Request& b) const;
  StepInput lay_out(const std::vector<Planned>& planned, StepInput step) const;
  void finish(Request* request, RequestStatus status);

  SchedulerConfig config_;
  KvCacheManager kv_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;  // every live request
  std::deque<Request*> waiting_;   // in admission order (runs_before)
  std::vector<Request*> running_;  // in admission order
  std::vector<std::string> pending_aborts_;
  int64_t next_arrival_ = 0;
  int64_t n_preemptions_ = 0;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
};

}  // namespace r1
