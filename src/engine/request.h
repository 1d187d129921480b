// A request's state inside the engine (vLLM v1's Request): its tokens, how
// many of them have KV in the cache, its blocks and where it is in its
// lifecycle. Owned by the Scheduler, touched only on the engine thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv_cache/block_hash.h"
#include "engine/kv_cache/block_table.h"
#include "kernels/sampling.h"

namespace r1 {

enum class RequestStatus {
  kWaiting,          // queued, never run or not yet resumed
  kRunning,          // holds KV blocks, scheduled every step it fits
  kPreempted,        // lost its blocks, queued to recompute from the start
  kFinishedStopped,  // sampled one of its stop ids
  kFinishedLength,   // reached max_tokens
  kFinishedAborted,  // cancelled by its client
};

bool is_finished(RequestStatus status);
// "WAITING", "RUNNING", ..., "FINISHED_ABORTED" (for logs).
std::string_view request_status_name(RequestStatus status);

// What a client submits; checked by Scheduler::check_admissible.
struct RequestSpec {
  std::string id;                 // unique among live requests
  std::vector<int32_t> prompt;    // token ids, BOS included when wanted; not empty
  SamplingParams sampling;        // carried for the engine's sampler
  int32_t max_tokens = 16;        // >= 1 output tokens at most
  std::vector<int32_t> stop_ids;  // generation ends after one of these (it is kept)
  int32_t priority = 0;           // lower runs earlier (priority policy only)
  // Teacher-forced scoring of the prompt (vLLM's prompt_logprobs): -1 off;
  // k >= 0: every prompt position gets the logprob of the prompt token after
  // it and the k most likely tokens. Such a request skips the prefix cache
  // until its prompt has been scored.
  int32_t prompt_logprobs = -1;
  // Output produced before (a generation resumed from a checkpoint): it
  // follows the prompt, is computed like a preempted request's tokens, and
  // counts toward max_tokens and the penalties as output.
  std::vector<int32_t> output;
};

struct Request {
  Request(RequestSpec spec, int64_t arrival);

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t n_output_tokens() const { return n_tokens() - n_prompt_tokens; }
  std::span<const int32_t> prompt() const {
    return {tokens.data(), static_cast<size_t>(n_prompt_tokens)};
  }
  std::span<const int32_t> output() const {
    return std::span<const int32_t>(tokens).subspan(static_cast<size_t>(n_prompt_tokens));
  }
  // Tokens still to compute before the next sample (1 for a decode).
  int32_t n_uncomputed() const { return n_tokens() - n_computed_tokens; }

  std::string id;
  SamplingParams sampling;
  int32_t max_tokens;
  std::vector<int32_t> stop_ids;
  int32_t priority;
  int32_t prompt_logprobs;
  int64_t arrival;  // admission order, from the scheduler's counter

  std::vector<int32_t> tokens;  // prompt then output
  int32_t n_prompt_tokens;
  // Tokens whose KV is in the cache (or written by the step in flight); the
  // scheduler catches it up to n_tokens(), a chunk per step.
  int32_t n_computed_tokens = 0;
  // Prompt positions below this have had their score row computed (never
  // twice, even when a preemption recomputes them).
  int32_t n_prompt_scored = 0;
  BlockTable table;
  std::vector<BlockHash> block_hashes;  // one key per full block of `tokens`

  RequestStatus status = RequestStatus::kWaiting;
  int32_t n_cached_prompt_tokens = 0;  // prefix-cache hit at first admission
  int32_t n_preemptions = 0;
  bool admitted_once = false;
  bool abort_requested = false;  // takes effect at the next schedule()
};

}  // namespace r1
