// A generation request on its way through the server: the context the
// generation routes share, and the job a request becomes once it is parsed
// and tokenised. The parts that handle a job (engine submission, the
// response cache, the responders, the accounting) each take these.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/api/checkpoint.h"
#include "server/api/openai_request.h"
#include "server/call_context.h"
#include "server/model_table.h"
#include "server/ops/response_cache.h"
#include "server/served_model.h"

namespace r1 {

struct GenerationRoutesContext {
  const ModelTable* models = nullptr;  // what requests are routed among
  Metrics* metrics = nullptr;
  AccessLog* access_log = nullptr;        // may be disabled
  std::atomic<int>* in_flight = nullptr;  // requests being generated (drain waits on it)
  ResponseCache* cache = nullptr;         // may be null (no response cache)
  // Set by the handler once it has chosen the version that serves the
  // request; `keep` holds it (and its engine) until the response, streamed
  // or whole, is done.
  const ServedModel* model = nullptr;
  std::shared_ptr<const ServedModel> keep;
  // Checkpoints for resumption elsewhere (resumption.h); null when off.
  class Resumption* resumption = nullptr;
};

using GenerationClock = std::chrono::steady_clock;

// A request after parsing and tokenizing, ready for the engine.
struct Job {
  std::string route;
  bool chat = false;
  GenerationOptions opt;
  std::vector<int32_t> prompt;
  int32_t max_tokens = 0;
  bool starts_in_reasoning = false;
  bool logprobs = false;
  int32_t n_top = 0;
  GenerationClock::time_point arrival = GenerationClock::now();
  std::string request_id;
  std::string remote_addr;
  CallContext call;                        // the caller, and where its usage goes
  std::function<bool()> client_connected;  // may be unset (requests built in tests)
  bool predict = false;                    // answer in /predict's shape
  std::string model, version;              // the version serving the job
  std::string cache_key;                   // set when the answer goes into the response cache
  std::string cache_state;                 // for the access log: "hit", "miss", "bypass" or ""
  // The response's "id" and "created" (kept across replicas when resumed).
  std::string response_id;
  int64_t created = 0;
  // Resumption (resumption.h): set when the server keeps checkpoints and
  // the job has one choice.
  bool resumable = false;
  std::string resume_id;  // the id it is resumed by: the request's X-Request-Id
  uint64_t seed = 0;      // its generator's (the server's choice when the client gave none)
  std::string digest;     // of the request body, to match a resumption to it
  std::optional<Checkpoint> resumed;  // the checkpoint this job goes on from
  int64_t client_has = 0;             // output tokens the client already has (resumed)
  int64_t replayed_reasoning = 0;     // reasoning tokens among the checkpoint's output
};

// Counts a request in flight (drain waits on it) for its lifetime.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>* n) : n_(n) {
    if (n_) n_->fetch_add(1);
  }
  ~InFlight() {
    if (n_) n_->fetch_sub(1);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>* n_;
};

inline double seconds_between(GenerationClock::time_point a, GenerationClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace r1
