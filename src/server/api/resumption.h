// Spot-safe serving: generations in flight are checkpointed into a store
// shared by the replicas (Redis or a directory), every N tokens and when
// the replica is told it will go (SIGTERM, a spot notice), and another
// replica resumes them from there: it prefills the prompt and the output so
// far, restores the generator, and goes on with exactly the tokens the
// uninterrupted run would have produced (engine.h: EngineRequest's resume
// fields). The text pipeline's state is rebuilt by replaying the output
// through a fresh ChoiceRun, and the client is sent only what it does not
// have. Usage is counted once: a checkpoint says what earlier replicas'
// ledgers count. Requests with one choice are resumable.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "obs/metrics.h"
#include "server/api/checkpoint.h"
#include "server/api/choice_run.h"
#include "server/ops/cache_store.h"

namespace r1 {

struct Job;

struct ResumptionOptions {
  int64_t every_tokens = 16;   // checkpoint period in output tokens; 0: on notice only
  int64_t ttl_seconds = 3600;  // a checkpoint not resumed by then is gone
};

class Resumption {
 public:
  // `metrics` may be null.
  Resumption(std::unique_ptr<CacheStore> store, ResumptionOptions options,
             Metrics* metrics = nullptr);

  // The interruption notice: every resumable generation in flight writes a
  // final checkpoint and ends, telling its client how to resume elsewhere.
  void interrupt() { interrupted_.store(true); }
  bool interrupted() const { return interrupted_.load(); }

  const ResumptionOptions& options() const { return options_; }
  const char* kind() const { return store_->kind(); }

  // Writes the checkpoint of `job` (one choice: `run`), whose client has
  // been sent `sent` output tokens. `final`: this replica stops here, and
  // its ledger counts what it reported (the checkpoint says so). False when
  // the store failed (counted in the metrics, logged).
  bool save(const Job& job, const ChoiceRun& run, int64_t sent, bool final);
  // The checkpoint `principal` may resume as `request_id`; nullopt when
  // there is none (never written, expired, or another principal's).
  Result<std::optional<Checkpoint>> load(const std::string& principal,
                                         const std::string& request_id);
  // Drops the job's checkpoint (the generation ended).
  void forget(const Job& job);

 private:
  std::unique_ptr<CacheStore> store_;
  ResumptionOptions options_;
  Metrics* metrics_;
  std::atomic<bool> interrupted_{false};
};

// Rebuilds `run`'s text state from `from`'s output, as the run that wrote it
// had it, and returns what the client must still be sent of it: the deltas
// of the tokens past `client_has`.
ChoiceDelta replay_output(ChoiceRun& run, const Checkpoint& from, int64_t client_has);

}  // namespace r1
