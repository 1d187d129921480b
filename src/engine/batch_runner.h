// Runs a fixed set of requests to completion over a Backend: every step packs
// decode tokens of the running sequences first, then prompt chunks, within a
// token budget, over a paged KV cache from a BlockPool. It is what the CLI's
// `generate` and `score` use and the smallest honest driver of the batched
// forward; the serving scheduler (continuous batching, preemption, prefix
// reuse) replaces it for the server.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "engine/kv_cache/block_pool.h"
#include "engine/request_stream.h"
#include "engine/sampler.h"
#include "model/backend.h"

namespace r1 {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included when wanted
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<int32_t> stop_ids;  // generation ends after one of these
};

struct GenerationResult {
  std::vector<int32_t> tokens;        // generated ids, a stop id included
  std::vector<SampledToken> samples;  // one per token (logprobs when asked)
  EndReason finish_reason = EndReason::kLength;
};

struct BatchRunnerOptions {
  int32_t max_batched_tokens = 512;  // tokens per forward step
  uint64_t seed = 0;                 // requests without a seed get seed + their index
};

struct RunStats {
  int64_t prefill_tokens = 0;  // prompt tokens computed
  double prefill_seconds = 0;  // time of steps that carried prompt tokens
  int64_t decode_tokens = 0;   // tokens computed in decode-only steps
  double decode_seconds = 0;   // time of decode-only steps
  int64_t steps = 0;
};

class BatchRunner {
 public:
  // `backend` must outlive the runner; the runner owns the block pool over
  // the backend's KV cache.
  BatchRunner(Backend& backend, const BatchRunnerOptions& options);

  // Called after every sampled token, from the calling thread.
  using TokenCallback = std::function<void(size_t request, const SampledToken& token)>;

  // Fails up front, running nothing, for an empty prompt, a request that does
  // not fit the context or the KV cache, or invalid sampling parameters.
  Result<std::vector<GenerationResult>> generate(std::span<const GenerationRequest> requests,
                                                 const TokenCallback& on_token = {});

  // Teacher-forced scoring: for every position, the top_k most likely next
  // tokens and their logprobs (log_softmax of the raw logits), most likely
  // first. The prompt runs in chunks of max_batched_tokens.
  Result<std::vector<std::vector<TokenLogprob>>> score(std::span<const int32_t> ids, int32_t top_k);

  const RunStats& stats() const { return stats_; }
  // KV blocks not held by any request (all of them between runs).
  int32_t n_free_blocks() const { return pool_.n_free(); }

 private:
  Backend& backend_;
  BatchRunnerOptions options_;
  BlockPool pool_;
  RunStats stats_;
};

}  // namespace r1
