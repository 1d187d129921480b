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
#include "engine/offline_run.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/peak.h"
#include "model/cuda_backend.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

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

// Multiply-adds of the layers' matrix products per token (q, k, v, o, gate,
// up, down); attention's own products are left out (at 512 positions they
// are under 2% of a 1.5B layer's).
int64_t layer_macs_per_token(const ModelConfig& c) {
  const int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  return c.n_layers * (c.hidden_size * (q + 2 * kv) + q * c.hidden_size +
                       3 * c.hidden_size * c.intermediate_size);
}

// The peak a dtype's matrix kernels run against: int8 multiply-adds for the
// integer formats, bf16 (or the f32 FMAs it is widened to) for the others.
const kernels::cpu::ArithmeticPeak* peak_for(const std::string& dtype,
                                             const kernels::cpu::ArithmeticPeak& int8,
                                             const kernels::cpu::ArithmeticPeak& bf16) {
  if (dtype == "int8" || dtype == "int4") return &int8;
  if (dtype == "bf16" || dtype == "f16") return &bf16;
  return nullptr;
}

}  // namespace

Status run_offline_bench(const OfflineBenchArgs& a) {
  if (a.prompt_tokens < 1 || a.gen_tokens < 1 || a.batches.empty() ||
      *std::min_element(a.batches.begin(), a.batches.end()) < 1) {
    return invalid_argument("--prompt-tokens, --gen-tokens and --batch must be at least 1");
  }
  const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  R1_ASSIGN_OR_RETURN(LoadOptions lo, load_options(a.precision, a.device));
  lo.n_threads = a.threads;
  // Prompts go in steps of at most 8192 tokens (one step for small runs).
  lo.max_batched_tokens = std::max(std::min(a.prompt_tokens * max_batch, 8192), max_batch);
  lo.kv_cache_tokens = static_cast<int64_t>(max_batch) * (a.prompt_tokens + a.gen_tokens + 16) + 16;
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
  ThreadPool triad_pool(lo.device.cuda ? 1 : n_threads);
  // The bound's bandwidth, measured in the same run: the CPU triad, or a
  // device-to-device copy on a GPU.
  auto measure_bw = [&](int repetitions) -> Result<BandwidthSample> {
    if (!lo.device.cuda) return measure_triad(triad_pool, repetitions);
    BandwidthSample s;
    R1_ASSIGN_OR_RETURN(s.gbps, measure_device_copy(lo.device.index, repetitions));
    return s;
  };
  R1_ASSIGN_OR_RETURN(BandwidthSample bw, measure_bw(3));
  // The arithmetic peaks, on the same threads, before and after the runs
  // (best of both).
  kernels::cpu::ArithmeticPeak int8_peak, bf16_peak;
  auto measure_peaks = [&] {
    if (lo.device.cuda) return;
    const kernels::cpu::ArithmeticPeak i8 = kernels::cpu::measure_int8_peak(triad_pool);
    const kernels::cpu::ArithmeticPeak b16 = kernels::cpu::measure_bf16_peak(triad_pool);
    if (i8.macs_per_second > int8_peak.macs_per_second) int8_peak = i8;
    if (b16.macs_per_second > bf16_peak.macs_per_second) bf16_peak = b16;
  };
  measure_peaks();
  const std::string dtype = a.precision.dtype.empty() ? "file" : a.precision.dtype;
  std::vector<nlohmann::ordered_json> records;
  double batch1_step_s = 0.0;  // the 1-sequence median step, for the batched runs' ratio

  // One measurement per batch size, on the model loaded once.
  auto run_batch = [&](const int batch) -> Status {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(0, backend.n_valid_vocab() - 1);
    int n_requests = 0;
    auto request = [&](int32_t n_prompt, int32_t max_tokens) {
      EngineRequest r;
      r.id = "bench-" + std::to_string(n_requests++);
      r.prompt.resize(static_cast<size_t>(n_prompt));
      for (int32_t& t : r.prompt) t = token(rng);
      r.sampling.temperature = 0.0f;  // greedy, no stop ids: every step runs
      r.max_tokens = max_tokens;
      return r;
    };
    int32_t last_seqs = 0, last_tokens = 0;
    EngineOptions eo = offline_engine_options(lo.max_batched_tokens, 0);
    eo.max_seqs = std::max(batch, 1);
    eo.on_step = [&](int32_t n_seqs, int32_t n_tokens, bool, double) {
      last_seqs = n_seqs;
      last_tokens = n_tokens;
    };
    Engine engine(backend, eo);
    // Warm-up: one token through every weight (page faults of mmap'd files,
    // caches, thread start).
    R1_RETURN_IF_ERROR(run_offline(engine, {request(1, 1)}).status());

    // Each request's first token comes with its prefill; then --gen-tokens
    // steps decode one token of every request each.
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < batch; ++i) {
      R1_ASSIGN_OR_RETURN(auto s, engine.submit(request(a.prompt_tokens, a.gen_tokens + 1)));
      streams.push_back(std::move(s));
    }
    std::vector<int32_t> n_out(streams.size(), 0);
    auto collect = [&]() -> Status {
      for (size_t i = 0; i < streams.size(); ++i) {
        while (auto e = streams[i]->next(std::chrono::milliseconds(0))) {
          n_out[i] += e->token ? 1 : 0;
          if (e->finished && e->end_reason == EndReason::kError) return e->error;
        }
      }
      return ok_status();
    };
    // Prefill: the steps until every request has its first token (one step
    // when all prompts fit --max-batched-tokens).
    const auto prefill_start = Clock::now();
    int prefill_steps = 0;
    for (bool all_started = false; !all_started;) {
      if (!engine.run_once()) break;
      ++prefill_steps;
      R1_RETURN_IF_ERROR(collect());
      all_started = std::all_of(n_out.begin(), n_out.end(), [](int32_t n) { return n > 0; });
    }
    const double prefill_s = std::chrono::duration<double>(Clock::now() - prefill_start).count();

    // Each decode step is timed on its own, and the bandwidth is measured
    // again halfway and at the end: on a shared machine both move over a run,
    // and the median step against the median bandwidth compares like with
    // like. Only steps that carry the whole batch count.
    std::vector<double> step_s;
    int64_t decoded = 0;
    StepProfile profile;
    if (a.profile) backend.set_profile(&profile);
    for (int g = 0;; ++g) {
      if (g == a.gen_tokens / 2 && g > 0) {
        R1_ASSIGN_OR_RETURN(BandwidthSample mid, measure_bw(2));
        bw.gbps.insert(bw.gbps.end(), mid.gbps.begin(), mid.gbps.end());
      }
      const auto step_start = Clock::now();
      const bool more = engine.run_once();
      if (last_seqs == batch && last_tokens == batch) {
        step_s.push_back(std::chrono::duration<double>(Clock::now() - step_start).count());
        decoded += last_tokens;
      }
      if (!more) break;
    }
    backend.set_profile(nullptr);
    R1_RETURN_IF_ERROR(collect());
    // Every request ran to its length: anything else fails the run.
    for (int32_t n : n_out) {
      if (n != a.gen_tokens + 1) {
        return internal_error("a request generated " + std::to_string(n) + " tokens, not " +
                              std::to_string(a.gen_tokens + 1));
      }
    }
    if (step_s.empty()) return internal_error("no decode step carried the whole batch");
    R1_ASSIGN_OR_RETURN(BandwidthSample after, measure_bw(3));
    bw.gbps.insert(bw.gbps.end(), after.gbps.begin(), after.gbps.end());

    double decode_s = 0.0;
    for (double t : step_s) decode_s += t;
    std::vector<double> sorted = step_s;
    std::sort(sorted.begin(), sorted.end());
    auto quantile = [&](double q) {
      return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5)];
    };
    const int64_t bytes = backend.weight_bytes_per_token();
    const double decode_tps = static_cast<double>(decoded) / decode_s;
    const double median_step_tps = batch / quantile(0.5);
    // A step reads the weights once for the whole batch.
    const double bound = bw.median() * 1e9 / static_cast<double>(bytes) * batch;
    nlohmann::ordered_json out;
    out["model"] = a.model;
    out["arch"] = c.arch == Arch::kQwen2 ? "qwen2" : "llama";
    out["hidden_size"] = c.hidden_size;
    out["n_layers"] = c.n_layers;
    out["dtype"] = dtype;
    out["lm_head_dtype"] = lo.precision.lm_head_dtype()
                               ? std::string(dtype_name(*lo.precision.lm_head_dtype()))
                               : "file";
    out["device"] = a.device.device;
    if (lo.device.cuda) {
      Result<std::string> gpu = describe_cuda_device(lo.device.index);
      out["gpu"] = gpu.ok() ? *gpu : gpu.status().message();
    }
    out["threads"] = n_threads;
    out["isa"] = std::string(kernels::cpu::isa_name(kernels::cpu::active_isa()));
    out["int8_vnni"] = kernels::cpu::vnni_kernels();
    out["load_seconds"] = load_s;
    out["batch"] = batch;
    out["prompt_tokens"] = a.prompt_tokens;
    out["prefill_steps"] = prefill_steps;
    out["prefill_tokens_per_second"] = static_cast<double>(a.prompt_tokens) * batch / prefill_s;
    out["gen_tokens"] = a.gen_tokens;
    out["decode_tokens_per_second"] = decode_tps;
    out["weight_bytes_per_token"] = bytes;
    // The bandwidth the bound uses: the CPU triad, or the GPU's copy.
    out[lo.device.cuda ? "copy_gbps_median" : "triad_gbps_median"] = bw.median();
    out[lo.device.cuda ? "copy_gbps_best" : "triad_gbps_best"] = bw.best();
    out["decode_bound_tokens_per_second"] = bound;
    out["decode_fraction_of_bound"] = decode_tps / bound;
    out["decode_step_ms_p10"] = quantile(0.1) * 1e3;
    out["decode_step_ms_median"] = quantile(0.5) * 1e3;
    out["decode_step_ms_p90"] = quantile(0.9) * 1e3;
    out["decode_tokens_per_second_median_step"] = median_step_tps;
    out["decode_fraction_of_bound_median_step"] = median_step_tps / bound;
    // At long contexts a step also reads every sequence's KV cache: the
    // bound with those bytes (the mean context of the timed steps) counted.
    const double mean_context = a.prompt_tokens + (a.gen_tokens + 1) / 2.0;
    const double kv_bytes = mean_context * static_cast<double>(backend.kv_bytes_per_position());
    const double bound_with_kv =
        bw.median() * 1e9 * batch / (static_cast<double>(bytes) + kv_bytes * batch);
    out["kv_bytes_per_token"] = kv_bytes;
    out["decode_bound_with_kv_tokens_per_second"] = bound_with_kv;
    out["decode_fraction_of_bound_with_kv_median_step"] = median_step_tps / bound_with_kv;
    if (batch == 1) batch1_step_s = quantile(0.5);
    // A batched step against a 1-sequence one: 1.0 would be a batch for
    // the price of one sequence (bound by reading the weights once).
    if (batch > 1 && batch1_step_s > 0) {
      out["decode_step_vs_batch1_median"] = quantile(0.5) / batch1_step_s;
    }
    // Multiply-add rates (set against the peaks once every run is done).
    const int64_t macs = layer_macs_per_token(c);
    const int64_t head_macs = c.hidden_size * c.vocab_size;  // logits of one token
    const double prefill_macs = static_cast<double>(macs) * a.prompt_tokens * batch +
                                static_cast<double>(head_macs) * batch;
    const double decode_macs = static_cast<double>(macs + head_macs) * batch;
    out["layer_macs_per_token"] = macs;
    out["prefill_gmacs"] = prefill_macs / prefill_s / 1e9;
    out["decode_gmacs_median_step"] = decode_macs / quantile(0.5) / 1e9;
    if (a.profile)
      out["decode_profile"] = profile_json(profile, static_cast<int>(decoded), bw.median());
    records.push_back(std::move(out));
    return ok_status();
  };
  // A batched run is compared with a 1-sequence one of the same run: that
  // goes first, added when the list lacks it.
  std::vector<int> batches = a.batches;
  std::stable_sort(batches.begin(), batches.end());
  if (batches.back() > 1 && batches.front() != 1) batches.insert(batches.begin(), 1);
  Status status = ok_status();
  for (int batch : batches) {
    status = run_batch(batch);
    if (!status.ok()) break;  // the runs before it are still printed
  }
  measure_peaks();
  for (nlohmann::ordered_json& out : records) {
    if (!lo.device.cuda) {
      // The best of the peaks measured before and after the runs.
      out["int8_peak_gmacs"] = int8_peak.macs_per_second / 1e9;
      out["int8_peak_instruction"] = int8_peak.instruction;
      out["bf16_peak_gmacs"] = bf16_peak.macs_per_second / 1e9;
      out["bf16_peak_instruction"] = bf16_peak.instruction;
      if (const auto* p = peak_for(dtype, int8_peak, bf16_peak)) {
        out["prefill_fraction_of_peak"] =
            out["prefill_gmacs"].get<double>() * 1e9 / p->macs_per_second;
        out["decode_fraction_of_peak_median_step"] =
            out["decode_gmacs_median_step"].get<double>() * 1e9 / p->macs_per_second;
      }
    }
    if (a.json) {
      std::cout << out.dump() << "\n";
    } else {
      for (const auto& [k, v] : out.items()) std::cout << k << ": " << v.dump() << "\n";
      std::cout << "\n";
    }
  }
  return status;
}

}  // namespace r1
