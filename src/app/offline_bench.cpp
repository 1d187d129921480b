#include "app/offline_bench.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/loaded_model.h"
#include "app/memory_bandwidth.h"
#include "app/single_sequence.h"
#include "kernels/cpu/isa.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

int32_t argmax(const std::vector<float>& v, int32_t n) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.begin() + n) - v.begin());
}

// Per op: ms per decoded token, share of the timed ops, and for ops that
// stream memory the GB/s they reached and that as a fraction of the median
// triad.
nlohmann::ordered_json profile_json(const StepProfile& p, int gen_tokens, double triad_gbps) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  const double total = static_cast<double>(p.total_ns());
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const StepProfile::Entry& e = p.ops[i];
    if (e.calls == 0) continue;
    nlohmann::ordered_json op;
    op["op"] = std::string(step_op_name(static_cast<StepOp>(i)));
    op["ms_per_token"] = static_cast<double>(e.ns) / 1e6 / gen_tokens;
    op["share"] = total > 0 ? static_cast<double>(e.ns) / total : 0.0;
    if (e.bytes > 0 && e.ns > 0) {
      op["bytes_per_token"] = e.bytes / gen_tokens;
      const double gbps = static_cast<double>(e.bytes) / static_cast<double>(e.ns);
      op["gbps"] = gbps;
      op["fraction_of_triad"] = triad_gbps > 0 ? gbps / triad_gbps : 0.0;
    }
    out.push_back(op);
  }
  return out;
}

}  // namespace

Status run_offline_bench(const OfflineBenchArgs& a) {
  if (a.prompt_tokens < 1 || a.gen_tokens < 1) {
    return invalid_argument("--prompt-tokens and --gen-tokens must be at least 1");
  }
  LoadOptions lo;
  lo.n_threads = a.threads;
  R1_ASSIGN_OR_RETURN(lo.precision, parse_precision(a.precision));
  lo.kv_cache_tokens = a.prompt_tokens + a.gen_tokens + 16;
  const auto load_start = Clock::now();
  R1_ASSIGN_OR_RETURN(LoadedModel m, load_model(a.model, lo));
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
  Backend& backend = *m.backend;
  const ModelConfig& c = backend.config();
  if (a.prompt_tokens + a.gen_tokens > c.max_position_embeddings) {
    return out_of_range("prompt + generated tokens exceed the model's context");
  }
  const int n_threads =
      a.threads > 0 ? a.threads : static_cast<int>(std::thread::hardware_concurrency());
  ThreadPool triad_pool(n_threads);
  BandwidthSample bw = measure_triad(triad_pool, 3);

  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, backend.n_valid_vocab() - 1);
  // Warm-up: one token through every weight (page faults of mmap'd files,
  // caches, thread start).
  {
    SingleSequenceStep warm({token(rng)}, 0, backend.block_size());
    R1_RETURN_IF_ERROR(backend.forward(warm.batch(), logits));
  }
  std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_tokens));
  for (int32_t& t : prompt) t = token(rng);
  SingleSequenceStep prefill(prompt, 0, backend.block_size());
  const auto prefill_start = Clock::now();
  R1_RETURN_IF_ERROR(backend.forward(prefill.batch(), logits));
  const double prefill_s = std::chrono::duration<double>(Clock::now() - prefill_start).count();

  // Each decode step is timed on its own, and the triad runs again halfway
  // and at the end: on a shared machine both move over a run, and the
  // median step against the median triad compares like with like.
  int32_t next = argmax(logits, backend.n_valid_vocab());
  std::vector<double> step_s;
  step_s.reserve(static_cast<size_t>(a.gen_tokens));
  StepProfile profile;
  if (a.profile) backend.set_profile(&profile);
  for (int g = 0; g < a.gen_tokens; ++g) {
    if (g == a.gen_tokens / 2 && g > 0) {
      BandwidthSample mid = measure_triad(triad_pool, 2);
      bw.gbps.insert(bw.gbps.end(), mid.gbps.begin(), mid.gbps.end());
    }
    SingleSequenceStep step({next}, a.prompt_tokens + g, backend.block_size());
    const auto step_start = Clock::now();
    R1_RETURN_IF_ERROR(backend.forward(step.batch(), logits));
    next = argmax(logits, backend.n_valid_vocab());
    step_s.push_back(std::chrono::duration<double>(Clock::now() - step_start).count());
  }
  backend.set_profile(nullptr);
  BandwidthSample after = measure_triad(triad_pool, 3);
  bw.gbps.insert(bw.gbps.end(), after.gbps.begin(), after.gbps.end());

  double decode_s = 0.0;
  for (double t : step_s) decode_s += t;
  std::vector<double> sorted = step_s;
  std::sort(sorted.begin(), sorted.end());
  auto quantile = [&](double q) {
    return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5)];
  };
  const int64_t bytes = backend.weight_bytes_per_token();
  const double decode_tps = a.gen_tokens / decode_s;
  const double median_step_tps = 1.0 / quantile(0.5);
  const double bound = bw.median() * 1e9 / static_cast<double>(bytes);
  nlohmann::ordered_json out;
  out["model"] = a.model;
  out["arch"] = c.arch == Arch::kQwen2 ? "qwen2" : "llama";
  out["hidden_size"] = c.hidden_size;
  out["n_layers"] = c.n_layers;
  out["dtype"] = a.precision.dtype.empty() ? "file" : a.precision.dtype;
  out["lm_head_dtype"] = lo.precision.lm_head_dtype()
                             ? std::string(dtype_name(*lo.precision.lm_head_dtype()))
                             : "file";
  out["threads"] = n_threads;
  out["isa"] = std::string(kernels::cpu::isa_name(kernels::cpu::active_isa()));
  out["int8_vnni"] = kernels::cpu::vnni_kernels();
  out["load_seconds"] = load_s;
  out["prompt_tokens"] = a.prompt_tokens;
  out["prefill_tokens_per_second"] = a.prompt_tokens / prefill_s;
  out["gen_tokens"] = a.gen_tokens;
  out["decode_tokens_per_second"] = decode_tps;
  out["weight_bytes_per_token"] = bytes;
  out["triad_gbps_median"] = bw.median();
  out["triad_gbps_best"] = bw.best();
  out["decode_bound_tokens_per_second"] = bound;
  out["decode_fraction_of_bound"] = decode_tps / bound;
  out["decode_step_ms_p10"] = quantile(0.1) * 1e3;
  out["decode_step_ms_median"] = quantile(0.5) * 1e3;
  out["decode_step_ms_p90"] = quantile(0.9) * 1e3;
  out["decode_tokens_per_second_median_step"] = median_step_tps;
  out["decode_fraction_of_bound_median_step"] = median_step_tps / bound;
  if (a.profile) out["decode_profile"] = profile_json(profile, a.gen_tokens, bw.median());
  if (a.json) {
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& [k, v] : out.items()) std::cout << k << ": " << v.dump() << "\n";
  }
  return ok_status();
}

}  // namespace r1
