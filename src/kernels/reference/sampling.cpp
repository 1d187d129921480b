// The reference sampler. Each step below is the definition a device sampler
// must reproduce; where it follows or departs from vLLM / Hugging Face, the
// comment says so.
#include "kernels/sampling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include "core/check.h"

namespace r1 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Below this temperature the step is greedy (vLLM's _SAMPLING_EPS). vLLM also
// raises temperatures in (0, 0.01) to 0.01; we do not: the weights below are
// computed relative to the maximum, so a small temperature cannot overflow.
constexpr float kGreedyBelowTemperature = 1e-5f;
constexpr float kMaxTemperature = 100.0f;
// The repetition penalty divides positive logits: bounded so that a logit in
// any real model's range cannot overflow to infinity.
constexpr float kMinRepetitionPenalty = 0.01f;
constexpr float kMaxRepetitionPenalty = 100.0f;
constexpr float kMaxAbsOpenAiPenalty = 2.0f;
constexpr int32_t kMaxTopLogprobs = 20;
// Up to this top_k, kth_largest keeps a heap instead of running nth_element.
constexpr size_t kHeapTopKLimit = 256;
// Up to this many entries, top_logprobs keeps a sorted array by insertion;
// more are sorted once.
constexpr int32_t kInsertionTopLimit = 64;
// Up to this many logits, top-p sorts the weights instead of bucketing them.
constexpr size_t kSortedTopPLimit = 4096;

std::string format_float(float x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(x));
  return buf;
}

Status out_of_range_field(const char* field, const char* range, const std::string& value) {
  return invalid_argument(std::string(field) + " must be " + range + ", got " + value);
}

Status check_ids(std::span<const int32_t> ids, size_t vocab, const char* what) {
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= vocab) {
      return invalid_argument(std::string(what) + " token id " + std::to_string(id) +
                              " outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
  return ok_status();
}

// The one uniform a non-greedy step uses: the top 53 bits of one 64-bit draw,
// u in [0, 1). Spelled out (not std::uniform_real_distribution) so that a
// device sampler fed the same draws reproduces it bit for bit.
double uniform_from(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Raw logprobs: log_softmax of the logits as the model produced them, before
// penalties, temperature and truncation (vLLM's default "raw_logprobs").
// Non-finite logits are masked. exp in f32 of the max-shifted logits, summed in
// double: the logprob is within a few f32 ulps (the tests allow 1e-5).
double log_sum_exp(std::span<const float> logits) {
  float l_max = -kInf;
  for (float l : logits) {
    if (std::isfinite(l) && l > l_max) l_max = l;
  }
  double sum = 0.0;
  for (float l : logits) {
    if (std::isfinite(l)) sum += std::exp(l - l_max);
  }
  return static_cast<double>(l_max) + std::log(sum);
}

// Top n_top by (logit desc, id asc). Few entries: a small sorted array, most
// rows rejected by the first comparison with its last entry. Many (a whole
// distribution, for a KL divergence): one partial sort.
std::vector<TokenLogprob> top_entries(std::span<const float> logits, int32_t n_top, double lse) {
  std::vector<TokenLogprob> top;
  if (n_top <= 0) return top;
  n_top = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(n_top), logits.size()));
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::vector<int32_t> best;
  if (n_top > kInsertionTopLimit) {
    for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
      if (std::isfinite(logits[i])) best.push_back(i);
    }
    const size_t keep = std::min(best.size(), static_cast<size_t>(n_top));
    std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(keep), best.end(),
                      better);
    best.resize(keep);
  } else {
    best.reserve(n_top + 1);
    for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
      if (!std::isfinite(logits[i])) continue;
      if (static_cast<int32_t>(best.size()) == n_top && !better(i, best.back())) continue;
      best.insert(std::upper_bound(best.begin(), best.end(), i, better), i);
      if (static_cast<int32_t>(best.size()) > n_top) best.pop_back();
    }
  }
  top.reserve(best.size());
  for (int32_t id : best) {
    top.push_back({id, static_cast<float>(static_cast<double>(logits[id]) - lse)});
  }
  return top;
}

void fill_logprobs(std::span<const float> logits, int32_t n_top, SampledToken* out) {
  const double lse = log_sum_exp(logits);
  out->logprob = static_cast<float>(static_cast<double>(logits[out->id]) - lse);
  out->top = top_entries(logits, n_top, lse);
}

bool has_penalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
}

// [vocab]-sized buffers of the thread that samples (the engine thread),
// reused across steps and requests so that a Sampler itself stays small.
struct Scratch {
  std::vector<float> penalised;  // [vocab] logits after the penalties
  std::vector<float> weights;    // [vocab] w, 0 = dropped
  std::vector<float> values;     // [<= vocab] top-k selection, top-p sorting
  std::vector<double> mass;      // [16257] top-p mass per bucket
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The k-th largest finite value of l, 1 <= k < (number of finite values).
// Small k keeps a min-heap of the k largest, where almost every value fails
// the first comparison. Measured on a 152064 row, one core, g++ 12 -O3: a
// top_k = 50 sample() takes 0.6 ms this way, 4.0 ms with nth_element alone.
float kth_largest(std::span<const float> l, size_t k, std::vector<float>& buf) {
  buf.clear();
  const auto greater = std::greater<float>();
  if (k <= kHeapTopKLimit) {
    for (float x : l) {
      if (!std::isfinite(x)) continue;
      if (buf.size() < k) {
        buf.push_back(x);
        std::push_heap(buf.begin(), buf.end(), greater);
      } else if (x > buf.front()) {
        std::pop_heap(buf.begin(), buf.end(), greater);
        buf.back() = x;
        std::push_heap(buf.begin(), buf.end(), greater);
      }
    }
    return buf.front();
  }
  for (float x : l) {
    if (std::isfinite(x)) buf.push_back(x);
  }
  std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k - 1), buf.end(),
                   greater);
  return buf[k - 1];
}

// Walks `sorted` (weights, descending) from the running sum `cum`; the weight
// at which it first reaches `target`, or the last one when rounding keeps it
// just short.
float walk_to_target(const std::vector<float>& sorted, double cum, double target) {
  for (float x : sorted) {
    cum += x;
    if (cum >= target) return x;
  }
  return sorted.back();
}

// The top-p cut weight w*: the weight at which the running sum of w in
// descending order first reaches `target`; 0 (keep all) when it never does.
// Rows up to kSortedTopPLimit sort their weights. Longer rows avoid the sort:
// positive floats order like their bit patterns, so the weights are bucketed
// by their top 16 bits (w <= 1 keeps them below 0x3F81), the buckets walked
// from the heaviest to the one where the sum reaches the target, and only
// that bucket's weights (1/128 of a binade) sorted. Measured on a flat 152064
// row (logits ~ N(0, 1)), T 0.6, top_p 0.95, one core, g++ 12 -O3: sample()
// took about 2 ms this way, 110 ms with partial sorts of a growing prefix.
float top_p_cut(std::span<const float> w, double target, Scratch& scratch) {
  std::vector<float>& sorted = scratch.values;
  sorted.clear();
  auto heavier_first = [&] { std::sort(sorted.begin(), sorted.end(), std::greater<float>()); };
  if (w.size() <= kSortedTopPLimit) {
    for (float x : w) {
      if (x > 0.0f) sorted.push_back(x);
    }
    heavier_first();
    return walk_to_target(sorted, 0.0, target);
  }

  constexpr uint32_t kBuckets = (std::bit_cast<uint32_t>(1.0f) >> 16) + 1;
  std::vector<double>& mass = scratch.mass;
  mass.assign(kBuckets, 0.0);
  for (float x : w) {
    if (x > 0.0f) mass[std::bit_cast<uint32_t>(x) >> 16] += x;
  }
  double cum = 0.0;
  int64_t bucket = kBuckets - 1;
  for (; bucket >= 0; --bucket) {
    if (cum + mass[bucket] >= target) break;
    cum += mass[bucket];
  }
  if (bucket < 0) return 0.0f;
  for (float x : w) {
    if (x > 0.0f && (std::bit_cast<uint32_t>(x) >> 16) == bucket) sorted.push_back(x);
  }
  heavier_first();
  return walk_to_target(sorted, cum, target);
}

}  // namespace

Status validate(const SamplingParams& p) {
  // Written as !(in range) so that NaN fails every check.
  if (!(p.temperature >= 0.0f && p.temperature <= kMaxTemperature)) {
    return out_of_range_field("temperature", "in [0, 100]", format_float(p.temperature));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return out_of_range_field("top_p", "in (0, 1]", format_float(p.top_p));
  }
  if (p.top_k < -1) {
    return out_of_range_field("top_k", "-1 or 0 (off) or positive", std::to_string(p.top_k));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return out_of_range_field("min_p", "in [0, 1]", format_float(p.min_p));
  }
  if (!(p.repetition_penalty >= kMinRepetitionPenalty &&
        p.repetition_penalty <= kMaxRepetitionPenalty)) {
    return out_of_range_field("repetition_penalty", "in [0.01, 100]",
                              format_float(p.repetition_penalty));
  }
  if (!(std::fabs(p.presence_penalty) <= kMaxAbsOpenAiPenalty)) {
    return out_of_range_field("presence_penalty", "in [-2, 2]", format_float(p.presence_penalty));
  }
  if (!(std::fabs(p.frequency_penalty) <= kMaxAbsOpenAiPenalty)) {
    return out_of_range_field("frequency_penalty", "in [-2, 2]", format_float(p.frequency_penalty));
  }
  if (p.n_top_logprobs < 0 || p.n_top_logprobs > kMaxTopLogprobs) {
    return out_of_range_field("n_top_logprobs", "in [0, 20]", std::to_string(p.n_top_logprobs));
  }
  if (p.n_top_logprobs > 0 && !p.logprobs) {
    return invalid_argument("n_top_logprobs (" + std::to_string(p.n_top_logprobs) +
                            ") needs logprobs to be enabled");
  }
  if (p.min_tokens < 0) {
    return out_of_range_field("min_tokens", "0 or more", std::to_string(p.min_tokens));
  }
  return ok_status();
}

// Penalties, in vLLM's order and float arithmetic (vllm/model_executor/layers/utils.py
// apply_penalties):
//   1. repetition r, once per distinct token of prompt + generated:
//        l > 0 ? l / r : l * r
//   2. frequency f, per distinct generated token seen c times: l -= f * c
//   3. presence p, per distinct generated token:                l -= p
// A penalty equal to its neutral value (1, 0, 0) is skipped and reads no ids.
Status apply_penalties(const SamplingParams& params, std::span<float> logits,
                       std::span<const int32_t> prompt, std::span<const int32_t> generated) {
  const bool repetition = params.repetition_penalty != 1.0f;
  const bool frequency = params.frequency_penalty != 0.0f;
  const bool presence = params.presence_penalty != 0.0f;
  const bool mask = masks_stop_ids(params, generated.size());
  if (repetition) R1_RETURN_IF_ERROR(check_ids(prompt, logits.size(), "prompt"));
  if (repetition || frequency || presence) {
    R1_RETURN_IF_ERROR(check_ids(generated, logits.size(), "generated"));
  }
  if (mask) {
    R1_RETURN_IF_ERROR(check_ids(params.min_tokens_ids, logits.size(), "min_tokens stop"));
    for (int32_t id : params.min_tokens_ids) logits[id] = -kInf;
  }

  if (repetition) {
    // One bit per vocabulary entry so each distinct token is penalised once.
    std::vector<uint64_t> seen((logits.size() + 63) / 64, 0);
    const float r = params.repetition_penalty;
    auto penalise = [&](int32_t id) {
      uint64_t& word = seen[static_cast<size_t>(id) >> 6];
      const uint64_t bit = uint64_t{1} << (id & 63);
      if (word & bit) return;
      word |= bit;
      float& l = logits[id];
      l = l > 0.0f ? l / r : l * r;
    };
    for (int32_t id : prompt) penalise(id);
    for (int32_t id : generated) penalise(id);
  }

  if (frequency || presence) {
    std::vector<int32_t> sorted(generated.begin(), generated.end());
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size();) {
      size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      float& l = logits[sorted[i]];
      if (frequency) l -= params.frequency_penalty * static_cast<float>(j - i);
      if (presence) l -= params.presence_penalty;
      i = j;
    }
  }
  return ok_status();
}

namespace {

// The chain after the penalties. Let l be the penalised logits, non-finite
// ones masked, and l_max their maximum.
//   greedy (temperature < 1e-5): the lowest id with l == l_max.
//   otherwise the weight of token i is w_i = exp((l_i - l_max) / T) (f32), so
//   the most likely token has w = 1 and the probabilities are w / sum(w).
//   A weight that underflows to 0 is a dropped token. Then:
//   top-k (0 < k < n finite): keep l_i >= the k-th largest l. Tokens tied with
//     the k-th are all kept (vLLM and HF threshold the same way).
//   top-p (p < 1), over the distribution renormalised after top-k: with the
//     weights in descending order, the cut weight w* is the one at which the
//     running sum first reaches p * sum(w); keep w_i >= w*. This is the
//     smallest most-likely-first set reaching p, plus anything tied with its
//     last token; the most likely token is always kept. Sums are in double;
//     when rounding keeps them from reaching p * sum(w), all are kept.
//   min-p (m > 0): keep p_i >= m * p_max, i.e. w_i >= m (p_max has w = 1, and
//     the ratio does not change when top-k/top-p renormalise).
// This is the order of vLLM V0 and Hugging Face (temperature, top-k, top-p,
// min-p). vLLM V1 applies min-p before top-k/top-p, which differs only when
// min-p and top-p are both set.
// On success either *greedy_id is set (a greedy step) or the thread's
// scratch holds the unnormalised weights (0 = dropped) and *total their sum.
Status prepare(const SamplingParams& params, std::span<const float> logits,
               std::span<const int32_t> prompt, std::span<const int32_t> generated,
               int32_t* greedy_id, double* total) {
  Scratch& scratch = thread_scratch();
  std::span<const float> l = logits;
  if (has_penalties(params) || masks_stop_ids(params, generated.size())) {
    scratch.penalised.assign(logits.begin(), logits.end());
    R1_RETURN_IF_ERROR(apply_penalties(params, scratch.penalised, prompt, generated));
    l = scratch.penalised;
  }

  // The maximum over the finite values (raw, or after a penalty); the strict
  // > keeps the lowest id among ties.
  float l_max = -kInf;
  int32_t arg_max = -1;
  size_t n_finite = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    if (!std::isfinite(l[i])) continue;
    ++n_finite;
    if (l[i] > l_max) {
      l_max = l[i];
      arg_max = static_cast<int32_t>(i);
    }
  }
  if (n_finite == 0) {
    return internal_error("logits row of " + std::to_string(logits.size()) +
                          " entries has no finite value");
  }
  if (params.temperature < kGreedyBelowTemperature) {
    *greedy_id = arg_max;
    return ok_status();
  }
  *greedy_id = -1;

  // top-k threshold on the logits (temperature does not change the order).
  float l_floor = -kInf;
  const size_t k = params.top_k > 0 ? static_cast<size_t>(params.top_k) : 0;
  if (k > 0 && k < n_finite) l_floor = kth_largest(l, k, scratch.values);

  // Weights, 0 for a masked or dropped token.
  std::vector<float>& w = scratch.weights;
  w.resize(l.size());
  const float t = params.temperature;
  double sum = 0.0;
  for (size_t i = 0; i < l.size(); ++i) {
    const float x = l[i];
    w[i] = (std::isfinite(x) && x >= l_floor) ? std::exp((x - l_max) / t) : 0.0f;
    sum += w[i];
  }

  float w_floor = params.min_p;  // min-p; 0 when off
  if (params.top_p < 1.0f) {
    const double target = static_cast<double>(params.top_p) * sum;
    w_floor = std::max(w_floor, top_p_cut(w, target, scratch));
  }
  if (w_floor > 0.0f) {
    sum = 0.0;
    for (float& x : w) {
      if (x < w_floor) x = 0.0f;
      sum += x;
    }
  }
  R1_CHECK(sum > 0.0);  // the maximum (w = 1) survives every step
  *total = sum;
  return ok_status();
}

// The draw: u from one 64-bit draw (uniform_from), then walk the ids in
// ascending order, summing w in double; the first id whose running sum
// exceeds u * sum(w) is chosen. A dropped token (w = 0) can never be the one
// that crosses. If rounding lets the walk end without crossing, the last id
// with w > 0 is chosen.
}  // namespace

bool is_greedy(const SamplingParams& params) {
  return params.temperature < kGreedyBelowTemperature;
}

Result<SampledToken> sample_row(const SamplingParams& params, std::span<const float> logits,
                                std::span<const int32_t> prompt, std::span<const int32_t> generated,
                                uint64_t draw) {
  int32_t greedy_id = -1;
  double total = 0.0;
  if (is_greedy(params) && !has_penalties(params) && !masks_stop_ids(params, generated.size())) {
    // The common greedy step: the lowest id of the largest finite logit, in
    // one branch-light pass (NaN fails both comparisons, +inf the second).
    float l_max = -kInf;
    for (size_t i = 0; i < logits.size(); ++i) {
      const float x = logits[i];
      if (x > l_max && x < kInf) {
        l_max = x;
        greedy_id = static_cast<int32_t>(i);
      }
    }
    if (greedy_id < 0) {
      return internal_error("logits row of " + std::to_string(logits.size()) +
                            " entries has no finite value");
    }
  } else {
    R1_RETURN_IF_ERROR(prepare(params, logits, prompt, generated, &greedy_id, &total));
  }

  SampledToken out;
  if (greedy_id >= 0) {
    out.id = greedy_id;
  } else {
    const std::vector<float>& w = thread_scratch().weights;
    const double target = uniform_from(draw) * total;
    double cum = 0.0;
    int32_t chosen = -1;
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] <= 0.0f) continue;
      chosen = static_cast<int32_t>(i);
      cum += w[i];
      if (cum > target) break;
    }
    R1_CHECK(chosen >= 0);
    out.id = chosen;
  }
  if (params.logprobs) fill_logprobs(logits, params.n_top_logprobs, &out);
  return out;
}

Result<std::vector<double>> sampling_distribution(const SamplingParams& params,
                                                  std::span<const float> logits,
                                                  std::span<const int32_t> prompt,
                                                  std::span<const int32_t> generated) {
  int32_t greedy_id = -1;
  double total = 0.0;
  R1_RETURN_IF_ERROR(prepare(params, logits, prompt, generated, &greedy_id, &total));
  std::vector<double> probs(logits.size(), 0.0);
  if (greedy_id >= 0) {
    probs[greedy_id] = 1.0;
  } else {
    const std::vector<float>& w = thread_scratch().weights;
    for (size_t i = 0; i < w.size(); ++i) probs[i] = w[i] / total;
  }
  return probs;
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t k) {
  if (k <= 0) return {};
  return top_entries(logits, k, log_sum_exp(logits));
}

float raw_logprob(std::span<const float> logits, int32_t id) {
  R1_CHECK(id >= 0 && static_cast<size_t>(id) < logits.size());
  if (!std::isfinite(logits[id])) return -kInf;
  return static_cast<float>(static_cast<double>(logits[id]) - log_sum_exp(logits));
}

}  // namespace r1
