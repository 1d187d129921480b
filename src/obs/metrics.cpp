#include "obs/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <utility>

namespace r1 {

const std::vector<double>& ttft_buckets() {
  static const std::vector<double> kBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                               0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                               20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
  return kBuckets;
}

const std::vector<double>& tpot_buckets() {
  static const std::vector<double> kBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                               0.3,  0.4,   0.5,  0.75,  1.0, 2.5,  5.0,
                                               7.5,  10.0,  20.0, 40.0,  80.0};
  return kBuckets;
}

const std::vector<double>& request_latency_buckets() {
  static const std::vector<double> kBuckets = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                               5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
  return kBuckets;
}

const std::vector<double>& batch_size_buckets() {
  static const std::vector<double> kBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return kBuckets;
}

const std::vector<double>& step_seconds_buckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08,
                                               0.16,  0.32,   0.64,  1.28, 2.56, 5.12, 10.0};
  return kBuckets;
}

namespace {

// engine_step_seconds' seqs buckets: upper bounds and label values.
constexpr std::array<int64_t, 6> kStepSeqsUpTo = {1, 4, 8, 16, 32, INT64_MAX};
constexpr std::array<const char*, 6> kStepSeqsLabel = {"1", "2-4", "5-8", "9-16", "17-32", "33+"};

}  // namespace

// --- ModelMetrics -----------------------------------------------------------

// prometheus::Counter ignores negative increments; callers pass counts >= 0.
void ModelMetrics::add_prompt_tokens(int64_t n) {
  prompt_tokens_->Increment(double(n));
}
void ModelMetrics::add_generation_tokens(int64_t n) {
  generation_tokens_->Increment(double(n));
}
void ModelMetrics::add_reasoning_tokens(int64_t n) {
  reasoning_tokens_->Increment(double(n));
}
void ModelMetrics::add_prefix_cache_queries(int64_t n_tokens) {
  prefix_cache_queries_->Increment(double(n_tokens));
}
void ModelMetrics::add_prefix_cache_hits(int64_t n_tokens) {
  prefix_cache_hits_->Increment(double(n_tokens));
}
void ModelMetrics::inc_preemptions(int64_t n) {
  preemptions_->Increment(double(n));
}
void ModelMetrics::inc_response_cache_hits(int64_t n) {
  response_cache_hits_->Increment(double(n));
}
void ModelMetrics::inc_response_cache_misses(int64_t n) {
  response_cache_misses_->Increment(double(n));
}
void ModelMetrics::inc_response_cache_errors(int64_t n) {
  response_cache_errors_->Increment(double(n));
}

void ModelMetrics::set_running(int64_t n_requests) {
  running_->Set(double(n_requests));
}
void ModelMetrics::set_waiting(int64_t n_requests) {
  waiting_->Set(double(n_requests));
}
void ModelMetrics::set_kv_cache_usage(double ratio) {
  kv_cache_usage_->Set(ratio);
}
void ModelMetrics::set_kv_cache_free_blocks(int64_t n_blocks) {
  kv_cache_free_blocks_->Set(double(n_blocks));
}

void ModelMetrics::observe_e2e_latency(double seconds) {
  e2e_latency_->Observe(seconds);
}
void ModelMetrics::observe_ttft(double seconds) {
  ttft_->Observe(seconds);
}
void ModelMetrics::observe_tpot(double seconds) {
  tpot_->Observe(seconds);
}
void ModelMetrics::observe_queue_time(double seconds) {
  queue_time_->Observe(seconds);
}
void ModelMetrics::observe_batch_size(int64_t n_seqs) {
  batch_size_->Observe(double(n_seqs));
}

void ModelMetrics::observe_step(int64_t n_seqs, bool decode, double seconds) {
  if (!decode) {
    prefill_step_->Observe(seconds);
    return;
  }
  size_t i = 0;
  while (n_seqs > kStepSeqsUpTo[i]) ++i;
  decode_step_[i]->Observe(seconds);
}

// --- Metrics ----------------------------------------------------------------

namespace {

prometheus::Family<prometheus::Counter>* counter(prometheus::Registry& r, const std::string& name,
                                                 const std::string& help) {
  return &prometheus::BuildCounter().Name("r1serve_" + name).Help(help).Register(r);
}
prometheus::Family<prometheus::Gauge>* gauge(prometheus::Registry& r, const std::string& name,
                                             const std::string& help) {
  return &prometheus::BuildGauge().Name("r1serve_" + name).Help(help).Register(r);
}
prometheus::Family<prometheus::Histogram>* histogram(prometheus::Registry& r,
                                                     const std::string& name,
                                                     const std::string& help) {
  return &prometheus::BuildHistogram().Name("r1serve_" + name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  requests_ = counter(r, "requests_total",
                      "Finished HTTP requests by route, model, model version and status.");
  prompt_tokens_ = counter(r, "prompt_tokens_total", "Prefill tokens processed.");
  generation_tokens_ = counter(r, "generation_tokens_total", "Generation tokens processed.");
  reasoning_tokens_ =
      counter(r, "reasoning_tokens_total", "Generated tokens inside <think>...</think>.");
  prefix_cache_queries_ =
      counter(r, "prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  prefix_cache_hits_ =
      counter(r, "prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  preemptions_ = counter(r, "num_preemptions_total", "Cumulative number of preemptions.");
  rate_limited_ = counter(r, "rate_limited_total", "Requests refused by a rate limit.");
  response_cache_hits_ =
      counter(r, "response_cache_hits_total", "Requests answered from the response cache.");
  response_cache_misses_ = counter(r, "response_cache_misses_total",
                                   "Cacheable requests not found in the response cache.");
  response_cache_errors_ =
      counter(r, "response_cache_errors_total",
              "Response-cache lookups or stores that failed (the request ran uncached).");
  running_ = gauge(r, "num_requests_running", "Requests in the running batch.");
  waiting_ = gauge(r, "num_requests_waiting", "Requests waiting to be scheduled.");
  kv_cache_usage_ =
      gauge(r, "kv_cache_usage_ratio", "KV-cache usage: used blocks / total blocks, 0 to 1.");
  kv_cache_free_blocks_ = gauge(r, "kv_cache_free_blocks", "KV-cache blocks free for new use.");
  ready_ = gauge(r, "ready", "1 while the server takes inference requests, else 0.");
  model_version_info_ =
      gauge(r, "model_version_info", "1 per loaded model version; role: active, canary or loaded.");
  principal_requests_ = counter(r, "principal_requests_total",
                                "Accounted inference calls per principal, model and cache result.");
  principal_tokens_ =
      counter(r, "principal_tokens_total", "Prompt and completion tokens per principal and model.");
  gpu_utilization_ = gauge(r, "gpu_utilization_ratio", "GPU utilisation, 0 to 1.");
  gpu_memory_used_ = gauge(r, "gpu_memory_used_bytes", "GPU memory in use, bytes.");
  gpu_memory_total_ = gauge(r, "gpu_memory_total_bytes", "GPU memory, bytes.");
  gpu_power_ = gauge(r, "gpu_power_watts", "GPU power draw, watts.");
  e2e_latency_ =
      histogram(r, "e2e_request_latency_seconds", "End-to-end request latency in seconds.");
  ttft_ = histogram(r, "time_to_first_token_seconds", "Time to first token in seconds.");
  tpot_ = histogram(r, "time_per_output_token_seconds", "Time per output token in seconds.");
  queue_time_ =
      histogram(r, "request_queue_time_seconds", "Time requests spent waiting, in seconds.");
  batch_size_ = histogram(r, "batch_size", "Sequences in one forward step.");
  step_seconds_ = histogram(r, "engine_step_seconds",
                            "Forward steps in seconds: kind decode (one token per sequence, seqs "
                            "its batch) or prefill.");
  checkpoints_written_ = &counter(r, "checkpoints_written_total",
                                  "Checkpoints of generations in flight written to the store.")
                              ->Add({});
  checkpoint_errors_ =
      &counter(r, "checkpoint_errors_total", "Checkpoint writes or reads the store failed.")
           ->Add({});
  resumes_ =
      counter(r, "resumes_total", "Resumption requests by result: resumed, not_found or refused.");
  for (const char* result : {"resumed", "not_found", "refused"}) {
    resumes_by_result_[result] = &resumes_->Add({{"result", result}});
  }
  recomputed_tokens_ =
      &counter(r, "resume_recomputed_tokens_total",
               "Output tokens computed again to resume generations (prefilled or regenerated).")
           ->Add({});
  interrupted_ = &gauge(r, "interruption_notice",
                        "1 once the replica got an interruption notice (SIGTERM, spot notice).")
                      ->Add({});
}

void Metrics::inc_checkpoints_written() {
  checkpoints_written_->Increment();
}
void Metrics::inc_checkpoint_errors() {
  checkpoint_errors_->Increment();
}
void Metrics::inc_resumes(std::string_view result) {
  const auto it = resumes_by_result_.find(result);
  if (it != resumes_by_result_.end()) it->second->Increment();
}
void Metrics::add_resume_recomputed_tokens(int64_t n) {
  recomputed_tokens_->Increment(static_cast<double>(n));
}
void Metrics::set_interrupted(bool on) {
  interrupted_->Set(on ? 1.0 : 0.0);
}

Metrics::~Metrics() = default;

std::string Metrics::model_label(std::string_view model) {
  if (model_labels_.find(model) != model_labels_.end()) return std::string(model);
  if (model_labels_.size() >= size_t(kMaxModels)) return std::string(kOverflowModel);
  return *model_labels_.emplace(model).first;
}

ModelMetrics& Metrics::model(std::string_view model) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string label = model_label(model);
  auto it = models_.find(label);
  if (it != models_.end()) return *it->second;

  const prometheus::Labels labels = {{"model", label}};
  auto m = std::unique_ptr<ModelMetrics>(new ModelMetrics());
  m->prompt_tokens_ = &prompt_tokens_->Add(labels);
  m->generation_tokens_ = &generation_tokens_->Add(labels);
  m->reasoning_tokens_ = &reasoning_tokens_->Add(labels);
  m->prefix_cache_queries_ = &prefix_cache_queries_->Add(labels);
  m->prefix_cache_hits_ = &prefix_cache_hits_->Add(labels);
  m->preemptions_ = &preemptions_->Add(labels);
  m->response_cache_hits_ = &response_cache_hits_->Add(labels);
  m->response_cache_misses_ = &response_cache_misses_->Add(labels);
  m->response_cache_errors_ = &response_cache_errors_->Add(labels);
  m->running_ = &running_->Add(labels);
  m->waiting_ = &waiting_->Add(labels);
  m->kv_cache_usage_ = &kv_cache_usage_->Add(labels);
  m->kv_cache_free_blocks_ = &kv_cache_free_blocks_->Add(labels);
  m->e2e_latency_ = &e2e_latency_->Add(labels, request_latency_buckets());
  m->ttft_ = &ttft_->Add(labels, ttft_buckets());
  m->tpot_ = &tpot_->Add(labels, tpot_buckets());
  m->queue_time_ = &queue_time_->Add(labels, request_latency_buckets());
  m->batch_size_ = &batch_size_->Add(labels, batch_size_buckets());
  m->prefill_step_ = &step_seconds_->Add({{"model", label}, {"kind", "prefill"}, {"seqs", "any"}},
                                         step_seconds_buckets());
  for (size_t i = 0; i < kStepSeqsLabel.size(); ++i) {
    m->decode_step_[i] =
        &step_seconds_->Add({{"model", label}, {"kind", "decode"}, {"seqs", kStepSeqsLabel[i]}},
                            step_seconds_buckets());
  }
  ModelMetrics& ref = *m;
  models_.emplace(std::move(label), std::move(m));
  return ref;
}

void Metrics::inc_requests(std::string_view route, std::string_view model, std::string_view version,
                           int status) {
  prometheus::Counter* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string label = model_label(model);
    // A model over the label budget loses its versions too.
    const std::string version_text = label == kOverflowModel ? "" : std::string(version);
    std::string status_text = std::to_string(status);
    std::string key;
    key.reserve(route.size() + label.size() + version_text.size() + status_text.size() + 3);
    key.append(route).push_back('\0');
    key.append(label).push_back('\0');
    key.append(version_text).push_back('\0');
    key.append(status_text);
    auto it = requests_by_key_.find(key);
    if (it != requests_by_key_.end()) {
      c = it->second;
    } else {
      c = &requests_->Add({{"route", std::string(route)},
                           {"model", label},
                           {"version", version_text},
                           {"status", status_text}});
      requests_by_key_.emplace(std::move(key), c);
    }
  }
  c->Increment();
}

void Metrics::inc_rate_limited(std::string_view route) {
  prometheus::Counter* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rate_limited_by_route_.find(route);
    if (it != rate_limited_by_route_.end()) {
      c = it->second;
    } else {
      c = &rate_limited_->Add({{"route", std::string(route)}});
      rate_limited_by_route_.emplace(std::string(route), c);
    }
  }
  c->Increment();
}

void Metrics::set_unlabelled(prometheus::Family<prometheus::Gauge>* family,
                             prometheus::Gauge** gauge, double value) {
  prometheus::Gauge* g = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (*gauge == nullptr) *gauge = &family->Add({});
    g = *gauge;
  }
  g->Set(value);
}

void Metrics::set_gpu_utilization(double ratio) {
  set_unlabelled(gpu_utilization_, &gpu_utilization_gauge_, ratio);
}

void Metrics::set_gpu_memory_used(int64_t bytes) {
  set_unlabelled(gpu_memory_used_, &gpu_memory_used_gauge_, static_cast<double>(bytes));
}

void Metrics::set_gpu_memory_total(int64_t bytes) {
  set_unlabelled(gpu_memory_total_, &gpu_memory_total_gauge_, static_cast<double>(bytes));
}

void Metrics::set_gpu_power(double watts) {
  set_unlabelled(gpu_power_, &gpu_power_gauge_, watts);
}

void Metrics::set_ready(bool ready) {
  prometheus::Gauge* g = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_gauge_ == nullptr) ready_gauge_ = &ready_->Add({});
    g = ready_gauge_;
  }
  g->Set(ready ? 1.0 : 0.0);
}

void Metrics::set_loaded_versions(std::string_view model,
                                  const std::vector<LoadedVersionLabel>& versions) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string label = model_label(model);
  std::vector<prometheus::Gauge*>& gauges = version_info_[label];
  for (prometheus::Gauge* g : gauges) model_version_info_->Remove(g);
  gauges.clear();
  for (const LoadedVersionLabel& v : versions) {
    prometheus::Gauge& g =
        model_version_info_->Add({{"model", label}, {"version", v.version}, {"role", v.role}});
    g.Set(1.0);
    gauges.push_back(&g);
  }
}

void Metrics::add_principal_usage(std::string_view principal, std::string_view model,
                                  bool cache_hit, int64_t prompt_tokens,
                                  int64_t completion_tokens) {
  prometheus::Counter *requests = nullptr, *prompt = nullptr, *completion = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string who(principal);
    if (principal_labels_.find(who) == principal_labels_.end()) {
      if (principal_labels_.size() >= size_t(kMaxPrincipals)) {
        who = std::string(kOverflowModel);
      } else {
        principal_labels_.insert(who);
      }
    }
    const std::string m = model_label(model);
    // Family::Add returns the existing series for labels it has seen.
    requests = &principal_requests_->Add(
        {{"principal", who}, {"model", m}, {"cache", cache_hit ? "hit" : "miss"}});
    prompt = &principal_tokens_->Add({{"principal", who}, {"model", m}, {"type", "prompt"}});
    completion =
        &principal_tokens_->Add({{"principal", who}, {"model", m}, {"type", "completion"}});
  }
  requests->Increment();
  prompt->Increment(double(prompt_tokens));
  completion->Increment(double(completion_tokens));
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

Metrics& metrics() {
  static Metrics* instance = new Metrics();  // never destroyed: threads may outlive main()
  return *instance;
}

}  // namespace r1
