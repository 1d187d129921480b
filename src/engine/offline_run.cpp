#include "engine/offline_run.h"

#include <chrono>
#include <memory>
#include <string>

namespace r1 {

EngineOptions offline_engine_options(int32_t max_batched_tokens, uint64_t seed) {
  EngineOptions o;
  o.max_batched_tokens = max_batched_tokens;
  o.seed = seed;
  o.threaded = false;
  return o;
}

Result<std::vector<OfflineResult>> run_offline(
    Engine& engine, std::vector<EngineRequest> requests,
    const std::function<void(size_t, const EngineEvent&)>& on_token) {
  const size_t n = requests.size();
  std::vector<std::shared_ptr<RequestStream>> streams;
  streams.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (requests[i].id.empty()) requests[i].id = "offline-" + std::to_string(i);
    Result<std::shared_ptr<RequestStream>> s = engine.submit(std::move(requests[i]));
    if (!s.ok()) {
      if (n == 1) return s.status();
      return s.status().with_context("request " + std::to_string(i));
    }
    streams.push_back(std::move(s).value());
  }
  std::vector<OfflineResult> results(n);
  std::vector<bool> done(n, false);
  size_t n_done = 0;
  Status failure;
  bool more = true;
  while (n_done < n) {
    if (!more) return internal_error("the engine went idle with requests unfinished");
    more = engine.run_once();
    for (size_t i = 0; i < n; ++i) {
      while (!done[i]) {
        std::optional<EngineEvent> e = streams[i]->next(std::chrono::milliseconds(0));
        if (!e) break;
        OfflineResult& r = results[i];
        if (!e->prompt_logprobs.empty()) r.prompt_logprobs = std::move(e->prompt_logprobs);
        if (e->token) {
          r.tokens.push_back(e->token->id);
          r.samples.push_back(*e->token);
          if (on_token) on_token(i, *e);
        }
        if (e->finished) {
          done[i] = true;
          ++n_done;
          r.end_reason = e->end_reason;
          if (e->end_reason == EndReason::kError && failure.ok()) {
            failure = n == 1 ? e->error : e->error.with_context("request " + std::to_string(i));
          }
        }
      }
    }
  }
  if (!failure.ok()) return failure;
  return results;
}

}  // namespace r1
