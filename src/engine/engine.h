// The engine: one thread that owns the backend, the scheduler (and through it
// the KV cache) and the per-request samplers, and runs steps while there is
// work. Everything else talks to it through Engine::submit and
// Engine::cancel, which are thread-safe, and reads results from each
// request's RequestStream.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/engine_client.h"
#include "engine/request_stream.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "model/backend.h"

namespace r1 {

struct EngineOptions {
  int32_t max_batched_tokens = 2048;
  int32_t max_seqs = 256;
  int32_t max_queue = 1024;  // waiting requests beyond this are refused (429)
  bool enable_prefix_caching = true;
  // kPriority: waiting requests run by (priority, arrival) instead of arrival.
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
  uint64_t seed = 0;  // requests without a seed draw from seed + arrival
  // Called on the engine thread after every forward step with the number of
  // sequences and tokens it carried, whether it only decoded (one token per
  // sequence, each past its prompt), and the seconds the backend took (the
  // batch_size and engine_step_seconds metrics). Must be cheap.
  std::function<void(int32_t n_seqs, int32_t n_tokens, bool decode, double seconds)> on_step;
  // false: no thread; the caller drives the steps with run_once() (the CLI
  // commands' synchronous loop).
  bool threaded = true;
};

// A request as the engine takes it: tokens, not text.
struct EngineRequest {
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int32_t max_tokens = 16;
  std::vector<int32_t> stop_ids;
  int32_t priority = 0;
  // Teacher-forced scoring of the prompt: -1 off; k >= 0: the first event
  // carries every prompt position's logprobs with k alternatives
  // (EngineEvent::prompt_logprobs). Up to the vocabulary size.
  int32_t prompt_logprobs = -1;
  // Reasoning budget: when the request has produced this many tokens while
  // inside <think> (the prompt ends inside it when `starts_in_reasoning`),
  // the engine appends `budget_close_ids` (the tokens of "\n</think>\n\n")
  // and lets the model answer; with 0 they come before any sampled token.
  // When they do not fit under max_tokens (with room for one more token),
  // the request ends there with kLength. -1 = no budget.
  int32_t max_reasoning_tokens = -1;
  bool starts_in_reasoning = true;
  int32_t think_end_id = -1;  // </think>; -1 = the model has none
  std::vector<int32_t> budget_close_ids;
  // Resuming a generation begun elsewhere (from a checkpoint): the output
  // it had produced, prefilled after the prompt and never sent again, and
  // the indices in it of the tokens the engine forced (the reasoning
  // budget's close). The sampler's generator (sampling.seed must be set),
  // the reasoning budget, the penalties and max_tokens carry on as if this
  // engine had produced them, so the tokens that follow are the ones the
  // uninterrupted request would have produced. Empty: a new request.
  std::vector<int32_t> resume_output;
  std::vector<int32_t> resume_forced;  // ascending indices into resume_output
  // Set by submit(): when the request arrived (for the queue-time metric).
  std::chrono::steady_clock::time_point arrival{};
};

class Engine : public EngineClient {
 public:
  // `backend` must outlive the engine. The thread starts here.
  Engine(Backend& backend, const EngineOptions& options);
  ~Engine() override;  // stops the thread; unfinished requests end with kAborted
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; its events arrive on the returned stream. Refused up
  // front (nothing queued): invalid sampling, empty or over-long prompt,
  // larger than the whole cache, a live duplicate id, or a full queue
  // (RESOURCE_EXHAUSTED).
  Result<std::shared_ptr<RequestStream>> submit(EngineRequest request) override;
  // Ends a request at the next step; its stream gets a kAborted finish.
  void cancel(const std::string& id) override;

  // Without a thread (EngineOptions::threaded false): takes what was
  // submitted and runs one step. Returns whether work remains. Call it from
  // one thread.
  bool run_once();

  // A snapshot for metrics; thread-safe.
  SchedulerStats stats() const override;
  int32_t max_model_len() const { return max_model_len_; }

 private:
  struct Live {
    std::shared_ptr<RequestStream> stream;
    Sampler sampler;
    EngineRequest request;
    bool in_reasoning = false;
    int32_t n_reasoning = 0;
    bool first_event = true;
    bool scheduled = false;
    std::vector<SampledToken> prompt_scores = {};  // prompt_logprobs, so far
    double queue_seconds = 0;                      // until first scheduled
    // How the request ends when the scheduler applies its abort: kAborted
    // for a cancel, kLength when a reasoning close did not fit.
    EndReason abort_reason = EndReason::kAborted;
  };

  void loop();
  void drain_inbox();
  void step();
  void finish_live(const std::string& id, EngineEvent event);
  void track_reasoning(Live& live, int32_t token);
  // Brings a resumed request's sampler and reasoning state to where its
  // output left them; forces what is left of a close it had begun.
  void replay_resumed(const std::string& id, Live& live);
  // Forces `ids` into the output (events marked forced); when they do not
  // fit under max_tokens, aborts the request to end with kLength.
  void force_tokens(const std::string& id, Live& live, std::span<const int32_t> ids);
  // Whether `live` is still reasoning with its budget used up.
  bool budget_spent(const Live& live) const;
  // Forces the close ids into the output (events marked forced); when they
  // do not fit under max_tokens, aborts the request to end with kLength.
  void close_reasoning(const std::string& id, Live& live);
  void publish_stats();

  Backend& backend_;
  EngineOptions options_;
  int32_t max_model_len_;
  Scheduler scheduler_;                         // engine thread only
  std::unordered_map<std::string, Live> live_;  // engine thread only

  mutable std::mutex mu_;  // guards the inbox, the counts and stats_
  std::condition_variable cv_;
  std::vector<std::pair<EngineRequest, std::shared_ptr<RequestStream>>> inbox_;
  std::vector<std::string> cancels_;
  std::unordered_map<std::string, bool> ids_in_use_;  // submitted, not finished
  SchedulerStats stats_;
  bool stop_ = false;
  uint64_t n_submitted_ = 0;
  std::thread thread_;
};

}  // namespace r1
