#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace r1 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------
// The test oracle: the sampling chain written out in the most direct way,
// in double, with full sorts and std containers. Shares no code with the
// sampler.

std::vector<float> reference_penalised(const SamplingParams& p, std::vector<float> logits,
                                       const std::vector<int32_t>& prompt,
                                       const std::vector<int32_t>& generated) {
  std::set<int32_t> seen(prompt.begin(), prompt.end());
  seen.insert(generated.begin(), generated.end());
  for (int32_t id : seen) {
    float l = logits[id];
    logits[id] = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
  }
  std::map<int32_t, int> counts;
  for (int32_t id : generated) counts[id]++;
  for (auto [id, c] : counts) {
    logits[id] = logits[id] - p.frequency_penalty * static_cast<float>(c);
    logits[id] = logits[id] - p.presence_penalty;
  }
  return logits;
}

void renormalise(std::vector<double>& probs) {
  double s = std::accumulate(probs.begin(), probs.end(), 0.0);
  for (double& x : probs) x /= s;
}

std::vector<double> reference_distribution(const SamplingParams& p, const std::vector<float>& raw,
                                           const std::vector<int32_t>& prompt = {},
                                           const std::vector<int32_t>& generated = {}) {
  std::vector<float> l = reference_penalised(p, raw, prompt, generated);
  const size_t n = l.size();
  std::vector<size_t> finite;
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(l[i])) finite.push_back(i);
  }
  std::vector<double> probs(n, 0.0);
  if (p.temperature < 1e-5f) {
    size_t best = finite[0];
    for (size_t i : finite) {
      if (l[i] > l[best]) best = i;
    }
    probs[best] = 1.0;
    return probs;
  }
  // Softmax of l / T over the finite entries.
  double mx = -INFINITY;
  for (size_t i : finite) mx = std::max(mx, static_cast<double>(l[i]));
  for (size_t i : finite) probs[i] = std::exp((l[i] - mx) / p.temperature);
  renormalise(probs);
  // top-k: drop everything below the k-th largest logit.
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < finite.size()) {
    std::vector<float> sorted;
    for (size_t i : finite) sorted.push_back(l[i]);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    float kth = sorted[p.top_k - 1];
    for (size_t i : finite) {
      if (l[i] < kth) probs[i] = 0.0;
    }
    renormalise(probs);
  }
  // top-p: the smallest most-likely-first prefix with mass >= top_p, plus ties.
  if (p.top_p < 1.0f) {
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
    double cum = 0.0, cut = 0.0;
    for (size_t i : idx) {
      cum += probs[i];
      if (cum >= p.top_p) {
        cut = probs[i];
        break;
      }
    }
    for (double& x : probs) {
      if (x < cut) x = 0.0;
    }
    renormalise(probs);
  }
  // min-p relative to the most likely token.
  if (p.min_p > 0.0f) {
    double pmax = *std::max_element(probs.begin(), probs.end());
    for (double& x : probs) {
      if (x < p.min_p * pmax) x = 0.0;
    }
    renormalise(probs);
  }
  return probs;
}

std::vector<double> reference_log_softmax(const std::vector<float>& logits) {
  long double sum = 0.0L;
  for (float l : logits) {
    if (std::isfinite(l)) sum += std::exp(static_cast<long double>(l));
  }
  std::vector<double> out(logits.size(), -INFINITY);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isfinite(logits[i])) out[i] = static_cast<double>(logits[i] - std::log(sum));
  }
  return out;
}

// ---------------------------------------------------------------------------

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 2.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> l(n);
  for (float& x : l) x = dist(gen);
  return l;
}

SampledToken sample_ok(Sampler& s, const std::vector<float>& logits,
                       const std::vector<int32_t>& prompt = {},
                       const std::vector<int32_t>& generated = {}) {
  auto r = s.sample(logits, prompt, generated);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : SampledToken{-1, 0.0f, {}};
}

std::vector<double> distribution_ok(Sampler& s, const std::vector<float>& logits,
                                    const std::vector<int32_t>& prompt = {},
                                    const std::vector<int32_t>& generated = {}) {
  auto r = s.distribution(logits, prompt, generated);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::vector<double>{};
}

SamplingParams with_seed(SamplingParams p, uint64_t seed) {
  p.seed = seed;
  return p;
}

// ---------------------------------------------------------------------------
// validate()

TEST(SamplerValidateTest, DefaultsAndBoundariesAreValid) {
  EXPECT_TRUE(validate(SamplingParams{}).ok());
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.top_k = -1;
  p.min_p = 1.0f;
  p.repetition_penalty = 0.01f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.logprobs = true;
  p.n_top_logprobs = 20;
  EXPECT_TRUE(validate(p).ok()) << validate(p).to_string();
  p.temperature = 100.0f;
  p.top_k = 1;
  p.min_p = 0.0f;
  p.repetition_penalty = 100.0f;
  p.top_p = 1e-6f;
  EXPECT_TRUE(validate(p).ok()) << validate(p).to_string();
}

TEST(SamplerValidateTest, ErrorsNameTheFieldAndValue) {
  struct Case {
    void (*mutate)(SamplingParams&);
    const char* message;
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.temperature = -0.5f; },
       "temperature must be in [0, 100], got -0.5"},
      {[](SamplingParams& p) { p.temperature = 250.0f; },
       "temperature must be in [0, 100], got 250"},
      {[](SamplingParams& p) { p.temperature = kNaN; }, "temperature must be in [0, 100], got nan"},
      {[](SamplingParams& p) { p.temperature = kInf; }, "temperature must be in [0, 100], got inf"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5"},
      {[](SamplingParams& p) { p.top_k = -2; }, "top_k must be -1 or 0 (off) or positive, got -2"},
      {[](SamplingParams& p) { p.min_p = -0.1f; }, "min_p must be in [0, 1], got -0.1"},
      {[](SamplingParams& p) { p.min_p = 1.25f; }, "min_p must be in [0, 1], got 1.25"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; },
       "repetition_penalty must be in [0.01, 100], got 0"},
      {[](SamplingParams& p) { p.repetition_penalty = -1.0f; },
       "repetition_penalty must be in [0.01, 100], got -1"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; },
       "presence_penalty must be in [-2, 2], got 2.5"},
      {[](SamplingParams& p) { p.frequency_penalty = -3.0f; },
       "frequency_penalty must be in [-2, 2], got -3"},
      {[](SamplingParams& p) { p.frequency_penalty = kNaN; },
       "frequency_penalty must be in [-2, 2], got nan"},
      {[](SamplingParams& p) {
         p.logprobs = true;
         p.n_top_logprobs = 21;
       },
       "n_top_logprobs must be in [0, 20], got 21"},
      {[](SamplingParams& p) {
         p.logprobs = true;
         p.n_top_logprobs = -1;
       },
       "n_top_logprobs must be in [0, 20], got -1"},
      {[](SamplingParams& p) { p.n_top_logprobs = 3; },
       "n_top_logprobs (3) needs logprobs to be enabled"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    Status s = validate(p);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
}

// ---------------------------------------------------------------------------
// Greedy

TEST(SamplerTest, GreedyIsArgmaxWithLowestIdOnTies) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 3.0f, kNaN, 1.0f, -kInf, 3.0f, kInf};
  for (float t : {0.0f, 5e-6f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 3;  // ignored when greedy
    p.top_p = 0.1f;
    Sampler s(p, 7);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(sample_ok(s, logits).id, 3) << "t=" << t;
    std::vector<double> d = distribution_ok(s, logits);
    EXPECT_EQ(d[3], 1.0);
    EXPECT_EQ(std::accumulate(d.begin(), d.end(), 0.0), 1.0);
  }
}

TEST(SamplerTest, OneDrawPerStepFromTheSeededGenerator) {
  // The documented draw: u = (x >> 11) * 2^-53 for one mt19937_64 output x,
  // then the first id whose running weight exceeds u * total. With two equal
  // weights token 0 is chosen exactly when u < 1/2, i.e. when x's top bit is 0.
  const std::vector<float> logits = {0.25f, 0.25f};
  Sampler s(with_seed({}, 5), 0);
  std::mt19937_64 gen(5);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(sample_ok(s, logits).id, static_cast<int32_t>(gen() >> 63)) << i;
  }
}

TEST(SamplerTest, TopKOneEqualsGreedy) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::vector<float> logits = random_logits(1000, seed);
    SamplingParams greedy;
    greedy.temperature = 0.0f;
    Sampler g(greedy, 0);
    SamplingParams k1 = with_seed({}, seed);
    k1.top_k = 1;
    k1.temperature = 1.7f;
    Sampler s(k1, 0);
    const int32_t want = sample_ok(g, logits).id;
    EXPECT_EQ(want, std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (int i = 0; i < 5; ++i) EXPECT_EQ(sample_ok(s, logits).id, want) << "seed " << seed;
  }
}

// ---------------------------------------------------------------------------
// The filtered distribution against the reference

struct ChainCase {
  const char* name;
  SamplingParams params;
};

std::vector<ChainCase> chain_cases() {
  std::vector<ChainCase> cases;
  auto add = [&](const char* name, auto mutate) {
    SamplingParams p;
    mutate(p);
    cases.push_back({name, p});
  };
  add("plain", [](SamplingParams&) {});
  add("temperature 0.6", [](SamplingParams& p) { p.temperature = 0.6f; });
  add("temperature 2.5", [](SamplingParams& p) { p.temperature = 2.5f; });
  add("top_k 5", [](SamplingParams& p) { p.top_k = 5; });
  add("top_k -1", [](SamplingParams& p) { p.top_k = -1; });
  add("top_p 0.8", [](SamplingParams& p) { p.top_p = 0.8f; });
  add("top_p 0.3 T 0.7", [](SamplingParams& p) {
    p.top_p = 0.3f;
    p.temperature = 0.7f;
  });
  add("min_p 0.1", [](SamplingParams& p) { p.min_p = 0.1f; });
  add("top_k 12 top_p 0.9 min_p 0.05 T 0.8", [](SamplingParams& p) {
    p.top_k = 12;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    p.temperature = 0.8f;
  });
  add("top_k 20 min_p 0.2 T 1.3", [](SamplingParams& p) {
    p.top_k = 20;
    p.min_p = 0.2f;
    p.temperature = 1.3f;
  });
  add("penalties T 0.9 top_p 0.95", [](SamplingParams& p) {
    p.repetition_penalty = 1.3f;
    p.frequency_penalty = 0.4f;
    p.presence_penalty = -0.3f;
    p.temperature = 0.9f;
    p.top_p = 0.95f;
  });
  return cases;
}

// A 48-token row with a few masked entries; prompt and generated exercise
// the penalties.
std::vector<float> small_row() {
  std::vector<float> l = random_logits(48, 2024, 1.5f);
  l[4] = -kInf;
  l[17] = -kInf;
  l[40] = kNaN;
  return l;
}
const std::vector<int32_t> kPrompt = {1, 2, 3, 3, 9, 20, 33};
const std::vector<int32_t> kGenerated = {3, 5, 5, 5, 9, 11, 20, 20};

TEST(SamplerTest, DistributionMatchesReference) {
  const std::vector<float> logits = small_row();
  for (const ChainCase& c : chain_cases()) {
    ASSERT_TRUE(validate(c.params).ok());
    Sampler s(c.params, 1);
    std::vector<double> got = distribution_ok(s, logits, kPrompt, kGenerated);
    std::vector<double> want = reference_distribution(c.params, logits, kPrompt, kGenerated);
    ASSERT_EQ(got.size(), want.size());
    int support = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      // The sampler's weights are float exps: 1e-6 absolute is ~10 float ulps.
      EXPECT_NEAR(got[i], want[i], 1e-6) << c.name << " token " << i;
      EXPECT_EQ(got[i] == 0.0, want[i] == 0.0) << c.name << " token " << i;
      support += want[i] > 0.0;
    }
    EXPECT_GT(support, 1) << c.name << ": the case should leave a choice";
  }
}

// Empirical frequencies over 20000 draws: 10000 first draws from fresh
// samplers with seeds 0..9999 and 10000 consecutive draws of one sampler.
// Tolerances, for the reference probabilities p and N = 20000:
//   * a token with p == 0 is never drawn;
//   * per token |count/N - p| <= 5 sqrt(p (1 - p) / N) (a 5-sigma band);
//   * Pearson's chi-square over the support stays below its 1e-6 upper
//     quantile (Wilson-Hilferty approximation with z = 4.75).
// The seeds are fixed, so the test is deterministic; the bounds say how far
// from the reference a correct sampler could plausibly land.
TEST(SamplerTest, EmpiricalFrequenciesMatchReference) {
  const std::vector<float> logits = small_row();
  constexpr int kHalf = 10000;
  constexpr double kN = 2.0 * kHalf;
  for (const ChainCase& c : chain_cases()) {
    std::vector<double> want = reference_distribution(c.params, logits, kPrompt, kGenerated);
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < kHalf; ++i) {
      Sampler s(with_seed(c.params, static_cast<uint64_t>(i)), 0);
      counts[sample_ok(s, logits, kPrompt, kGenerated).id]++;
    }
    Sampler stream(c.params, /*fallback_seed=*/12345);
    for (int i = 0; i < kHalf; ++i) counts[sample_ok(stream, logits, kPrompt, kGenerated).id]++;

    double chi2 = 0.0;
    int support = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double p = want[i];
      if (p == 0.0) {
        EXPECT_EQ(counts[i], 0) << c.name << ": dropped token " << i << " was drawn";
        continue;
      }
      ++support;
      const double f = counts[i] / kN;
      EXPECT_LE(std::fabs(f - p), 5.0 * std::sqrt(p * (1.0 - p) / kN) + 1e-12)
          << c.name << " token " << i << " p=" << p << " f=" << f;
      chi2 += (counts[i] - kN * p) * (counts[i] - kN * p) / (kN * p);
    }
    const double df = support - 1;
    if (df > 0) {
      const double a = 2.0 / (9.0 * df);
      const double bound = df * std::pow(1.0 - a + 4.75 * std::sqrt(a), 3.0);
      EXPECT_LE(chi2, bound) << c.name << " df=" << df;
    }
  }
}

TEST(SamplerTest, TopKKeepsEveryTokenTiedWithTheKth) {
  // Logits 3, 2, 2, 2, 1: top_k = 2 keeps the 3 and all three 2s.
  std::vector<float> logits = {2.0f, 3.0f, 1.0f, 2.0f, 2.0f};
  SamplingParams p;
  p.top_k = 2;
  Sampler s(p, 0);
  std::vector<double> d = distribution_ok(s, logits);
  EXPECT_EQ(d[2], 0.0);
  for (int i : {0, 1, 3, 4}) EXPECT_GT(d[i], 0.0) << i;
  EXPECT_NEAR(d[0], d[3], 1e-12);
  std::vector<double> want = reference_distribution(p, logits);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], want[i], 1e-6);
}

TEST(SamplerTest, TopPAlwaysKeepsTheMostLikelyToken) {
  std::vector<float> logits = {0.0f, 5.0f, 0.1f, -2.0f};
  SamplingParams p;
  p.top_p = 1e-6f;
  Sampler s(p, 0);
  std::vector<double> d = distribution_ok(s, logits);
  EXPECT_EQ(d, (std::vector<double>{0.0, 1.0, 0.0, 0.0}));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_ok(s, logits).id, 1);
}

TEST(SamplerTest, TopPKeepsEveryTokenTiedAtTheCut) {
  // Equal logits: the nucleus reaches 0.5 halfway, and the tie keeps all.
  // Both sizes: the sampler sorts short rows and buckets long ones.
  for (size_t n : {1000u, 20000u}) {
    std::vector<float> flat(n, 0.25f);
    flat[n - 1] = -1.0f;
    SamplingParams p;
    p.top_p = 0.5f;
    Sampler s(p, 0);
    std::vector<double> d = distribution_ok(s, flat);
    std::vector<double> want = reference_distribution(p, flat);
    for (size_t i = 0; i < d.size(); ++i) ASSERT_NEAR(d[i], want[i], 1e-9) << n << " " << i;
    EXPECT_GT(d[n - 2], 0.0);
    EXPECT_EQ(d[n - 1], 0.0);
  }
}

TEST(SamplerTest, LargeVocabularyMatchesReference) {
  // A Qwen2-sized row; top-p with a nucleus of thousands of tokens makes the
  // sampler's partial sort grow through several rounds.
  const std::vector<float> logits = random_logits(152064, 77, 1.0f);
  std::vector<SamplingParams> params(7);
  params[0].top_p = 0.9f;
  params[1].top_p = 0.05f;
  params[1].temperature = 0.5f;
  params[2].top_k = 1000;
  params[2].top_p = 0.7f;
  params[3].min_p = 0.3f;
  params[4].top_k = 40;
  params[4].temperature = 0.3f;
  params[5].top_k = 1000;  // past the heap: the selection path for large k
  params[6].top_k = 300;
  params[6].temperature = 2.0f;
  params[6].min_p = 0.01f;
  for (const SamplingParams& p : params) {
    Sampler s(with_seed(p, 5), 0);
    std::vector<double> got = distribution_ok(s, logits);
    std::vector<double> want = reference_distribution(p, logits);
    size_t support = 0, mismatched = 0;
    double max_err = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
      support += want[i] > 0.0;
      mismatched += (got[i] == 0.0) != (want[i] == 0.0);
      max_err = std::max(max_err, std::fabs(got[i] - want[i]));
    }
    EXPECT_EQ(mismatched, 0u) << "top_p " << p.top_p << " top_k " << p.top_k;
    EXPECT_LE(max_err, 1e-7);
    EXPECT_GT(support, 1u);
    for (int i = 0; i < 50; ++i) EXPECT_GT(want[sample_ok(s, logits).id], 0.0);
  }
}

// ---------------------------------------------------------------------------
// Seeds

std::vector<int32_t> generate(const SamplingParams& p, uint64_t fallback, int n) {
  // Feeds each token back as generated so the penalties see the sequence.
  Sampler s(p, fallback);
  std::vector<int32_t> prompt = {1, 2, 3};
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = random_logits(500, static_cast<uint64_t>(i), 1.0f);
    out.push_back(sample_ok(s, logits, prompt, out).id);
  }
  return out;
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_p = 0.95f;
  p.frequency_penalty = 0.3f;
  p.repetition_penalty = 1.1f;
  const auto a = generate(with_seed(p, 42), 0, 100);
  EXPECT_EQ(generate(with_seed(p, 42), 1234, 100), a);  // the fallback is unused
  EXPECT_NE(generate(with_seed(p, 43), 0, 100), a);
  // Without a seed the fallback seed decides.
  EXPECT_EQ(generate(p, 42, 100), a);
  EXPECT_NE(generate(p, 7, 100), a);
}

TEST(SamplerTest, SequencesDoNotDependOnThreads) {
  SamplingParams p;
  p.top_k = 50;
  std::vector<std::vector<int32_t>> serial, threaded(4);
  for (uint64_t s = 0; s < 4; ++s) serial.push_back(generate(with_seed(p, s), 0, 60));
  std::vector<std::thread> threads;
  for (uint64_t s = 0; s < 4; ++s) {
    threads.emplace_back([&, s] { threaded[s] = generate(with_seed(p, s), 0, 60); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(serial, threaded);
}

// ---------------------------------------------------------------------------
// Penalties

TEST(SamplerPenaltiesTest, MatchTheFormulasExactly) {
  const std::vector<float> raw = small_row();
  for (const ChainCase& c : chain_cases()) {
    std::vector<float> got = raw;
    ASSERT_TRUE(apply_penalties(c.params, got, kPrompt, kGenerated).ok());
    std::vector<float> want = reference_penalised(c.params, raw, kPrompt, kGenerated);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i]));
      } else {
        EXPECT_EQ(got[i], want[i]) << c.name << " token " << i;
      }
    }
  }
}

TEST(SamplerPenaltiesTest, HandDerivedValues) {
  std::vector<float> l = {1.0f, -1.0f, 3.0f, 0.5f, 2.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.5f;
  // Token 0: prompt only (repetition once, even though it appears 3 times).
  // Token 1: generated twice, negative. Token 2: prompt and generated once.
  ASSERT_TRUE(
      apply_penalties(p, l, std::vector<int32_t>{0, 0, 2, 0}, std::vector<int32_t>{1, 2, 1}).ok());
  EXPECT_EQ(l[0], 0.5f);                     // 1 / 2
  EXPECT_EQ(l[1], -1.0f * 2 - 0.5f - 0.5f);  // -2 - 0.25*2 - 0.5
  EXPECT_EQ(l[2], 3.0f / 2 - 0.25f - 0.5f);  // 1.5 - 0.25 - 0.5
  EXPECT_EQ(l[3], 0.5f);                     // untouched
  EXPECT_EQ(l[4], 2.0f);
}

TEST(SamplerPenaltiesTest, PenaltiesFlipTheArgmax) {
  // Token 5 leads token 2 by 0.1 until a penalty applies to it.
  std::vector<float> logits(10, 0.0f);
  logits[5] = 3.0f;
  logits[2] = 2.9f;
  const std::vector<int32_t> gen5 = {5, 5, 5};
  auto greedy = [&](SamplingParams p, const std::vector<int32_t>& prompt,
                    const std::vector<int32_t>& gen) {
    p.temperature = 0.0f;
    Sampler s(p, 0);
    return sample_ok(s, logits, prompt, gen).id;
  };
  SamplingParams none;
  EXPECT_EQ(greedy(none, {}, gen5), 5);
  SamplingParams rep;
  rep.repetition_penalty = 1.2f;  // 3.0 / 1.2 = 2.5
  EXPECT_EQ(greedy(rep, {}, gen5), 2);
  EXPECT_EQ(greedy(rep, {5}, {}), 2);  // the prompt counts for repetition
  SamplingParams freq;
  freq.frequency_penalty = 0.05f;  // 3.0 - 3 * 0.05 = 2.85
  EXPECT_EQ(greedy(freq, {}, gen5), 2);
  EXPECT_EQ(greedy(freq, {}, {5}), 5);        // 2.95: one occurrence is not enough
  EXPECT_EQ(greedy(freq, {5, 5, 5}, {}), 5);  // the prompt does not count
  SamplingParams pres;
  pres.presence_penalty = 0.2f;  // 2.8, however often
  EXPECT_EQ(greedy(pres, {}, {5}), 2);
  SamplingParams negative;
  negative.presence_penalty = -0.5f;  // encourages token 2
  EXPECT_EQ(greedy(negative, {}, {2}), 2);
}

TEST(SamplerPenaltiesTest, OutOfVocabularyIdsAreErrors) {
  std::vector<float> logits(10, 0.0f);
  SamplingParams rep;
  rep.repetition_penalty = 1.5f;
  Sampler s(rep, 0);
  auto r = s.sample(logits, std::vector<int32_t>{1, 10}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "prompt token id 10 outside the vocabulary [0, 10)");
  SamplingParams freq;
  freq.frequency_penalty = 0.5f;
  std::vector<float> before = logits;
  Status st = apply_penalties(freq, logits, {}, std::vector<int32_t>{3, -1});
  EXPECT_EQ(st.message(), "generated token id -1 outside the vocabulary [0, 10)");
  EXPECT_EQ(logits, before);
  // Without a penalty the ids are not read.
  Sampler plain(SamplingParams{}, 0);
  EXPECT_TRUE(plain.sample(logits, std::vector<int32_t>{99}, std::vector<int32_t>{-5}).ok());
}

// ---------------------------------------------------------------------------
// Masked logits

TEST(SamplerTest, MaskedTokensAreNeverChosen) {
  std::vector<ChainCase> cases = chain_cases();
  SamplingParams hot;
  hot.temperature = 100.0f;
  cases.push_back({"temperature 100", hot});
  for (const ChainCase& c : cases) {
    // Every other token masked, in all three non-finite forms.
    std::vector<float> logits = random_logits(200, 11);
    for (size_t i = 0; i < logits.size(); i += 2) logits[i] = (i % 6 == 0) ? kNaN : -kInf;
    logits[100] = kInf;
    Sampler s(c.params, 3);
    for (int i = 0; i < 500; ++i) {
      int32_t id = sample_ok(s, logits, kPrompt, kGenerated).id;
      ASSERT_EQ(id % 2, 1) << c.name << " chose masked token " << id;
    }
  }
}

TEST(SamplerTest, OnlyOneFiniteLogit) {
  std::vector<float> logits(1000, -kInf);
  logits[637] = -50.0f;
  for (const ChainCase& c : chain_cases()) {
    Sampler s(c.params, 9);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_ok(s, logits, kPrompt, kGenerated).id, 637);
  }
}

TEST(SamplerTest, NoFiniteLogitIsAnError) {
  std::vector<float> logits = {-kInf, kNaN, -kInf, kInf};
  for (float t : {0.0f, 1.0f}) {
    SamplingParams p;
    p.temperature = t;
    Sampler s(p, 0);
    auto r = s.sample(logits, {}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInternal);
    EXPECT_EQ(r.status().message(), "logits row of 4 entries has no finite value");
    EXPECT_FALSE(s.sample(std::vector<float>{}, {}, {}).ok());
  }
}

// ---------------------------------------------------------------------------
// Logprobs

TEST(SamplerLogprobsTest, ChosenAndTopMatchRawLogSoftmax) {
  std::vector<float> logits = random_logits(3000, 5, 3.0f);
  logits[10] = -kInf;
  logits[11] = kNaN;
  // Ties: tokens 100 and 50 share the maximum, 7 and 8 a lower value.
  logits[100] = logits[50] = 20.0f;
  logits[8] = logits[7] = 15.0f;
  const std::vector<double> ref = reference_log_softmax(logits);

  std::vector<SamplingParams> params(3);
  params[1].temperature = 0.0f;
  params[2].temperature = 0.5f;  // logprobs stay raw whatever the chain does
  params[2].top_k = 3;
  params[2].repetition_penalty = 1.5f;
  params[2].presence_penalty = 1.0f;
  for (SamplingParams p : params) {
    p.logprobs = true;
    p.n_top_logprobs = 20;
    Sampler s(with_seed(p, 8), 0);
    for (int draw = 0; draw < 10; ++draw) {
      SampledToken t = sample_ok(s, logits, std::vector<int32_t>{100, 3}, std::vector<int32_t>{7});
      EXPECT_NEAR(t.logprob, ref[t.id], 1e-5);
      ASSERT_EQ(t.top.size(), 20u);
      std::vector<size_t> order(logits.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return ref[a] > ref[b]; });
      for (size_t j = 0; j < 20; ++j) {
        EXPECT_EQ(t.top[j].id, static_cast<int32_t>(order[j])) << j;
        EXPECT_NEAR(t.top[j].logprob, ref[order[j]], 1e-5) << j;
      }
      EXPECT_EQ(t.top[0].id, 50);
      EXPECT_EQ(t.top[1].id, 100);
    }
  }
}

TEST(SamplerLogprobsTest, OnlyWhatWasAskedFor) {
  std::vector<float> logits = {1.0f, 2.0f, -kInf, 0.5f};
  SamplingParams off;
  Sampler s0(off, 0);
  SampledToken t0 = sample_ok(s0, logits);
  EXPECT_EQ(t0.logprob, 0.0f);
  EXPECT_TRUE(t0.top.empty());

  SamplingParams chosen_only;
  chosen_only.logprobs = true;
  Sampler s1(chosen_only, 0);
  SampledToken t1 = sample_ok(s1, logits);
  EXPECT_NEAR(t1.logprob, reference_log_softmax(logits)[t1.id], 1e-6);
  EXPECT_TRUE(t1.top.empty());

  // More alternatives asked for than there are finite logits.
  SamplingParams many;
  many.logprobs = true;
  many.n_top_logprobs = 5;
  Sampler s2(many, 0);
  SampledToken t2 = sample_ok(s2, logits);
  ASSERT_EQ(t2.top.size(), 3u);
  EXPECT_EQ(t2.top[0].id, 1);
  EXPECT_EQ(t2.top[1].id, 0);
  EXPECT_EQ(t2.top[2].id, 3);
}

}  // namespace
}  // namespace r1
