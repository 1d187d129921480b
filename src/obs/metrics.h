// Prometheus metrics of the server and the engine, named like vLLM's so that
// existing dashboards map one to one (DESIGN.md §6): prefix `r1serve_`, the
// `model` label where vLLM has `model_name`. Serialised to the Prometheus text
// format by Metrics::serialize() for our own GET /metrics route.
//
// Thread-safety: every method may be called from any thread. prometheus-cpp
// metrics are atomic; the per-label handle caches are guarded by one mutex per
// Metrics instance. Hot paths (the engine step loop) should hold on to a
// ModelMetrics reference from Metrics::model() and skip the lookup.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace r1 {

// Histogram bucket upper bounds (seconds unless named otherwise), as vLLM's.
const std::vector<double>& ttft_buckets();             // time_to_first_token_seconds
const std::vector<double>& tpot_buckets();             // time_per_output_token_seconds
const std::vector<double>& request_latency_buckets();  // e2e and queue time
const std::vector<double>& batch_size_buckets();       // 1, 2, 4, ..., 512 sequences
const std::vector<double>& step_seconds_buckets();     // engine_step_seconds, 1 ms to 10 s

// The series of one model label. Owned by the Metrics that made it; the
// reference stays valid for that Metrics' lifetime. Cheap: each call is one
// atomic update, no lookup, no lock.
class ModelMetrics {
 public:
  // Tokens. generation counts every generated token, reasoning the part of
  // them before </think> (so reasoning <= generation).
  void add_prompt_tokens(int64_t n);
  void add_generation_tokens(int64_t n);
  void add_reasoning_tokens(int64_t n);
  // Prefix cache, in tokens as vLLM counts: queried = prompt tokens looked
  // up, hits = those found cached.
  void add_prefix_cache_queries(int64_t n_tokens);
  void add_prefix_cache_hits(int64_t n_tokens);
  void inc_preemptions(int64_t n = 1);
  // Response cache: hits answered from it, misses that looked and ran the
  // model, errors when the cache store could not answer (served uncached).
  void inc_response_cache_hits(int64_t n = 1);
  void inc_response_cache_misses(int64_t n = 1);
  void inc_response_cache_errors(int64_t n = 1);

  // Engine state, set by the engine thread after each step.
  void set_running(int64_t n_requests);
  void set_waiting(int64_t n_requests);
  void set_kv_cache_usage(double ratio);  // used / total blocks, 0..1
  void set_kv_cache_free_blocks(int64_t n_blocks);

  // Latencies in seconds.
  void observe_e2e_latency(double seconds);
  void observe_ttft(double seconds);
  void observe_tpot(double seconds);
  void observe_queue_time(double seconds);
  void observe_batch_size(int64_t n_seqs);  // sequences in one forward step
  // engine_step_seconds{kind,seqs}: how long one forward step took. kind
  // "decode" for a step that only decoded (one token per sequence), else
  // "prefill"; a decode step's seqs is its batch in buckets (1, 2-4, 5-8,
  // 9-16, 17-32, 33+), so a step's cost at concurrency 8 can be set against
  // one at 1.
  void observe_step(int64_t n_seqs, bool decode, double seconds);

 private:
  friend class Metrics;
  ModelMetrics() = default;

  prometheus::Counter* prompt_tokens_ = nullptr;
  prometheus::Counter* generation_tokens_ = nullptr;
  prometheus::Counter* reasoning_tokens_ = nullptr;
  prometheus::Counter* prefix_cache_queries_ = nullptr;
  prometheus::Counter* prefix_cache_hits_ = nullptr;
  prometheus::Counter* preemptions_ = nullptr;
  prometheus::Counter* response_cache_hits_ = nullptr;
  prometheus::Counter* response_cache_misses_ = nullptr;
  prometheus::Counter* response_cache_errors_ = nullptr;
  prometheus::Gauge* running_ = nullptr;
  prometheus::Gauge* waiting_ = nullptr;
  prometheus::Gauge* kv_cache_usage_ = nullptr;
  prometheus::Gauge* kv_cache_free_blocks_ = nullptr;
  prometheus::Histogram* e2e_latency_ = nullptr;
  prometheus::Histogram* ttft_ = nullptr;
  prometheus::Histogram* tpot_ = nullptr;
  prometheus::Histogram* queue_time_ = nullptr;
  prometheus::Histogram* batch_size_ = nullptr;
  prometheus::Histogram* prefill_step_ = nullptr;
  std::array<prometheus::Histogram*, 6> decode_step_{};  // by seqs bucket
};

class Metrics {
 public:
  // Distinct model labels kept before further names are counted under
  // kOverflowModel: a label value must never be an unbounded client string.
  static constexpr int kMaxModels = 64;
  static constexpr std::string_view kOverflowModel = "other";

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The handles for `model`, created on first use. Callers pass a model name
  // they know (registry name or alias), or "" when the request named none.
  ModelMetrics& model(std::string_view model);

  // requests_total{route,model,version,status}: one per finished HTTP
  // request; `version` is the loaded version that served it ("" when none
  // did), so a canary's error rate can be compared with the active one's.
  // route: the route pattern ("/v1/chat/completions"), never the raw path;
  // status: the HTTP status code.
  void inc_requests(std::string_view route, std::string_view model, std::string_view version,
                    int status);
  // rate_limited_total{route}: requests refused by a rate limit (429).
  void inc_rate_limited(std::string_view route);

  // Shorthands for model(m).xxx(...).
  void add_prompt_tokens(std::string_view m, int64_t n) { model(m).add_prompt_tokens(n); }
  void add_generation_tokens(std::string_view m, int64_t n) { model(m).add_generation_tokens(n); }
  void add_reasoning_tokens(std::string_view m, int64_t n) { model(m).add_reasoning_tokens(n); }
  void inc_response_cache_hits(std::string_view m) { model(m).inc_response_cache_hits(); }
  void observe_e2e_latency(std::string_view m, double s) { model(m).observe_e2e_latency(s); }
  void observe_ttft(std::string_view m, double s) { model(m).observe_ttft(s); }
  void observe_tpot(std::string_view m, double s) { model(m).observe_tpot(s); }
  void observe_queue_time(std::string_view m, double s) { model(m).observe_queue_time(s); }

  // ready{}: 1 while the server takes inference requests (model loaded, not
  // draining), else 0; for alerts on replicas that stay out of rotation.
  void set_ready(bool ready);

  // model_version_info{model,version,role}: 1 for each loaded version of
  // `model` the server routes to, role "active", "canary" or "loaded" (not
  // routed yet); replaces what was set for the model before.
  struct LoadedVersionLabel {
    std::string version;
    std::string role;
  };
  void set_loaded_versions(std::string_view model, const std::vector<LoadedVersionLabel>& versions);

  // Per principal (key id, JWT subject or forwarded name; never a secret),
  // bounded like model labels: past kMaxPrincipals distinct names the rest
  // count under kOverflowModel ("other").
  //   principal_requests_total{principal,model,cache}: accounted inference
  //     calls, cache = "hit" or "miss";
  //   principal_tokens_total{principal,model,type}: type = prompt | completion.
  static constexpr int kMaxPrincipals = 256;
  void add_principal_usage(std::string_view principal, std::string_view model, bool cache_hit,
                           int64_t prompt_tokens, int64_t completion_tokens);

  // GPU gauges (no labels). They appear in the output only once set, so a
  // CPU-only server does not report a GPU at 0%.
  void set_gpu_utilization(double ratio);  // 0..1
  void set_gpu_memory_used(int64_t bytes);
  void set_gpu_memory_total(int64_t bytes);
  void set_gpu_power(double watts);

  // Resuming generations on another replica (no labels but the result):
  //   checkpoints_written_total, checkpoint_errors_total,
  //   resumes_total{result}: result = resumed | not_found | refused,
  //   resume_recomputed_tokens_total: output tokens computed again,
  //   interruption_notice: 1 once the replica was told it will go.
  void inc_checkpoints_written();
  void inc_checkpoint_errors();
  void inc_resumes(std::string_view result);
  void add_resume_recomputed_tokens(int64_t n);
  void set_interrupted(bool on);

  // Everything in the Prometheus text exposition format (version 0.0.4).
  std::string serialize() const;

  // Content-Type of serialize()'s output.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  // Sets a gauge without labels, creating it on first use.
  void set_unlabelled(prometheus::Family<prometheus::Gauge>* family, prometheus::Gauge** gauge,
                      double value);

  // The label for `model`: itself while fewer than kMaxModels names were
  // seen, else kOverflowModel. Requires mu_.
  std::string model_label(std::string_view model);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* generation_tokens_;
  prometheus::Family<prometheus::Counter>* reasoning_tokens_;
  prometheus::Family<prometheus::Counter>* prefix_cache_queries_;
  prometheus::Family<prometheus::Counter>* prefix_cache_hits_;
  prometheus::Family<prometheus::Counter>* preemptions_;
  prometheus::Family<prometheus::Counter>* rate_limited_;
  prometheus::Family<prometheus::Counter>* response_cache_hits_;
  prometheus::Family<prometheus::Counter>* response_cache_misses_;
  prometheus::Family<prometheus::Counter>* response_cache_errors_;
  prometheus::Family<prometheus::Gauge>* running_;
  prometheus::Family<prometheus::Gauge>* waiting_;
  prometheus::Family<prometheus::Gauge>* kv_cache_usage_;
  prometheus::Family<prometheus::Gauge>* kv_cache_free_blocks_;
  prometheus::Family<prometheus::Gauge>* ready_;
  prometheus::Family<prometheus::Gauge>* model_version_info_;
  prometheus::Family<prometheus::Counter>* principal_requests_;
  prometheus::Family<prometheus::Counter>* principal_tokens_;
  prometheus::Family<prometheus::Gauge>* gpu_utilization_;
  prometheus::Family<prometheus::Gauge>* gpu_memory_used_;
  prometheus::Family<prometheus::Gauge>* gpu_memory_total_;
  prometheus::Family<prometheus::Gauge>* gpu_power_;
  prometheus::Family<prometheus::Histogram>* e2e_latency_;
  prometheus::Family<prometheus::Histogram>* ttft_;
  prometheus::Family<prometheus::Histogram>* tpot_;
  prometheus::Family<prometheus::Histogram>* queue_time_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Histogram>* step_seconds_;
  prometheus::Counter* checkpoints_written_;
  prometheus::Counter* checkpoint_errors_;
  prometheus::Family<prometheus::Counter>* resumes_;
  std::map<std::string, prometheus::Counter*, std::less<>> resumes_by_result_;  // fixed at start
  prometheus::Counter* recomputed_tokens_;
  prometheus::Gauge* interrupted_;

  // Guards the caches below (not the metrics themselves, which are atomic).
  std::mutex mu_;
  std::set<std::string, std::less<>> model_labels_;
  std::map<std::string, std::unique_ptr<ModelMetrics>, std::less<>> models_;
  std::map<std::string, prometheus::Counter*, std::less<>> requests_by_key_;
  std::map<std::string, std::vector<prometheus::Gauge*>, std::less<>> version_info_;
  std::map<std::string, prometheus::Counter*, std::less<>> rate_limited_by_route_;
  prometheus::Gauge* ready_gauge_ = nullptr;
  std::set<std::string, std::less<>> principal_labels_;
  prometheus::Gauge* gpu_utilization_gauge_ = nullptr;
  prometheus::Gauge* gpu_memory_used_gauge_ = nullptr;
  prometheus::Gauge* gpu_memory_total_gauge_ = nullptr;
  prometheus::Gauge* gpu_power_gauge_ = nullptr;
};

// The process-wide instance that the server, the engine and /metrics share.
Metrics& metrics();

}  // namespace r1
