// The output side of one submitted request: the engine thread pushes events,
// the request's handler (an HTTP worker, the CLI) pops them. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "core/status.h"
#include "kernels/sampling.h"

namespace r1 {

enum class EndReason { kStop, kLength, kAborted, kError };

struct EngineEvent {
  // A token appended to the output (sampled, or forced by the reasoning
  // budget); absent on a pure finish or error event.
  std::optional<SampledToken> token;
  bool forced = false;  // appended by the engine, not sampled
  bool finished = false;
  EndReason end_reason = EndReason::kStop;
  Status error;  // non-ok with EndReason::kError
  int32_t n_prompt_tokens = 0;
  int32_t n_cached_prompt_tokens = 0;  // prefix-cache hit
  // On the first token event: seconds from submit() to the first step that
  // scheduled the request (the queue-time metric); 0 on later events.
  double queue_seconds = 0;
  // On the first token event of a request that scored its prompt
  // (EngineRequest::prompt_logprobs >= 0): one entry per prompt position p,
  // for the token after it: id = prompt[p + 1] and its raw logprob (id -1
  // and logprob 0 at the last position), top = the most likely tokens.
  std::vector<SampledToken> prompt_logprobs;
  std::chrono::steady_clock::time_point time = std::chrono::steady_clock::now();
};

class RequestStream {
 public:
  void push(EngineEvent event);
  // Waits up to `timeout` for the next event; nullopt on timeout.
  std::optional<EngineEvent> next(std::chrono::milliseconds timeout);
  // Waits for the next event, however long.
  EngineEvent next();

 private:
  std::mutex mu_;  // guards events_
  std::condition_variable cv_;
  std::deque<EngineEvent> events_;
};

}  // namespace r1
