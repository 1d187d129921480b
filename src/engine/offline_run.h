// The CLI commands' driver: the serving engine without its thread, stepped
// synchronously until every request has finished. `generate`, `score`,
// `perplexity` and `bench --offline` all run through it, so the offline
// numbers come from the same scheduler, batch layout and sampler as the
// server's.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"

namespace r1 {

struct OfflineResult {
  std::vector<int32_t> tokens;                // generated ids (forced ones included)
  std::vector<SampledToken> samples;          // one per token (logprobs when asked)
  std::vector<SampledToken> prompt_logprobs;  // EngineRequest::prompt_logprobs
  EndReason end_reason = EndReason::kLength;
};

// EngineOptions for a CLI run: no thread, `max_batched_tokens` per step.
EngineOptions offline_engine_options(int32_t max_batched_tokens, uint64_t seed);

// Submits every request to `engine` (built with offline_engine_options) and
// steps it until all have finished. `on_token(i, event)` sees each token event
// of request i as it comes. The first request that fails (refused, or ended
// with an error) fails the run, with its index in the message.
Result<std::vector<OfflineResult>> run_offline(
    Engine& engine, std::vector<EngineRequest> requests,
    const std::function<void(size_t, const EngineEvent&)>& on_token = {});

}  // namespace r1
