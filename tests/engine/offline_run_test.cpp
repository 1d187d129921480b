// The synchronous driver (engine/offline_run.h) over a real CPU backend with a
// small random model: batch invariance (a request's greedy tokens do not
// depend on what it is batched with, how prompts are chunked, or the thread
// count), stops, padding rows, prompt scoring (prompt_logprobs) and errors.
#include "engine/offline_run.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "model/cpu_backend.h"
#include "small_model.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using testing_model::kVocab;
using testing_model::small_config;
using testing_model::write_model;

class OfflineRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("offline-run-" + std::to_string(getpid()));
    files_ = write_model(config_, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CpuBackend> backend(int threads, int32_t n_blocks = 512) {
    auto b = CpuBackend::create(config_, files_, kVocab, CpuBackendOptions{threads, n_blocks, 16});
    EXPECT_TRUE(b.ok()) << b.status().message();
    return std::move(b).value();
  }

  static std::vector<EngineRequest> requests(int n) {
    std::mt19937 rng(7);
    std::vector<EngineRequest> out(n);
    for (int i = 0; i < n; ++i) {
      const int len = 1 + (i * 37) % 90;  // 1 .. 90 tokens
      for (int k = 0; k < len; ++k) out[i].prompt.push_back(static_cast<int32_t>(rng() % kVocab));
      out[i].sampling.temperature = 0.0f;
      out[i].max_tokens = 6 + i % 5;
    }
    return out;
  }

  static Result<std::vector<OfflineResult>> run(Backend& b, std::vector<EngineRequest> reqs,
                                                int32_t step_tokens = 512) {
    Engine engine(b, offline_engine_options(step_tokens, 0));
    return run_offline(engine, std::move(reqs));
  }

  // The prompt's scores: prompt_logprobs = top, a greedy token after it.
  static std::vector<SampledToken> scores(Backend& b, const std::vector<int32_t>& ids, int32_t top,
                                          int32_t step_tokens) {
    EngineRequest r;
    r.prompt = ids;
    r.sampling.temperature = 0.0f;
    r.max_tokens = 1;
    r.prompt_logprobs = top;
    auto res = run(b, {r}, step_tokens);
    EXPECT_TRUE(res.ok()) << res.status().message();
    return res.ok() ? (*res)[0].prompt_logprobs : std::vector<SampledToken>{};
  }

  ModelConfig config_ = small_config();
  fs::path dir_;
  std::shared_ptr<const WeightFiles> files_;
};

TEST_F(OfflineRunTest, GreedyTokensDoNotDependOnTheBatch) {
  const auto reqs = requests(32);
  auto alone_backend = backend(1);
  std::vector<std::vector<int32_t>> alone;
  for (const auto& r : reqs) {
    auto res = run(*alone_backend, {r});
    ASSERT_TRUE(res.ok()) << res.status().message();
    alone.push_back((*res)[0].tokens);
    EXPECT_EQ(alone.back().size(), static_cast<size_t>(r.max_tokens));
  }
  // All 32 together, prompts chunked by a 64-token budget (prefill chunks and
  // decodes share steps), on a pool of three threads.
  auto together_backend = backend(3);
  int steps = 0;
  EngineOptions o = offline_engine_options(64, 0);
  o.on_step = [&](int32_t, int32_t, bool, double) { ++steps; };
  Engine engine(*together_backend, o);
  auto res = run_offline(engine, reqs);
  ASSERT_TRUE(res.ok()) << res.status().message();
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ((*res)[i].tokens, alone[i]) << "request " << i;
  EXPECT_GT(steps, 10);
}

// on_step says which steps only decoded: not a prompt's steps, not even a
// one-token prompt's (one new token, no output yet), nor a step that
// mixes a prompt chunk with decodes.
TEST_F(OfflineRunTest, StepsSayWhetherTheyOnlyDecoded) {
  auto b = backend(1);
  std::vector<std::pair<int32_t, bool>> steps;  // (sequences, decode)
  EngineOptions o = offline_engine_options(64, 0);
  o.on_step = [&](int32_t n_seqs, int32_t, bool decode, double seconds) {
    EXPECT_GE(seconds, 0.0);
    steps.emplace_back(n_seqs, decode);
  };
  Engine engine(*b, o);
  auto reqs = requests(2);
  reqs[0].id = "one-token-prompt";
  reqs[1].id = "later";
  reqs[0].prompt = {5};
  reqs[0].max_tokens = 3;
  reqs[0].stop_ids.clear();
  ASSERT_TRUE(run_offline(engine, {reqs[0]}).ok());
  EXPECT_EQ(steps, (std::vector<std::pair<int32_t, bool>>{{1, false}, {1, true}, {1, true}}));
  // A second request arriving while the first decodes: its prompt's step
  // carries the first's decode too, and is not a decode step.
  steps.clear();
  reqs[1].max_tokens = 2;
  reqs[1].stop_ids.clear();
  auto first = engine.submit(reqs[0]);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(engine.run_once());  // the first's prompt
  auto second = engine.submit(reqs[1]);
  ASSERT_TRUE(second.ok());
  while (engine.run_once()) {
  }
  ASSERT_GE(steps.size(), 3u);
  EXPECT_EQ(steps[0], std::make_pair(1, false));
  EXPECT_EQ(steps[1], std::make_pair(2, false));  // the first decodes, the second's prompt
  EXPECT_EQ(steps[2], std::make_pair(2, true));
}

TEST_F(OfflineRunTest, NeverSamplesPaddingRows) {
  auto b = backend(2);
  auto reqs = requests(4);
  for (auto& r : reqs) r.sampling = SamplingParams{.temperature = 5.0f};
  auto res = run(*b, reqs);
  ASSERT_TRUE(res.ok());
  for (const auto& r : *res) {
    for (int32_t id : r.tokens) EXPECT_LT(id, kVocab);
  }
}

TEST_F(OfflineRunTest, StopIdEndsTheRequest) {
  auto b = backend(2);
  auto reqs = requests(2);
  auto res = run(*b, reqs);
  ASSERT_TRUE(res.ok());
  const int32_t second_token = (*res)[0].tokens[1];
  reqs[0].stop_ids = {second_token};
  auto stopped = run(*b, reqs);
  ASSERT_TRUE(stopped.ok());
  // Stops at the first occurrence of the stop id, which is included.
  const auto& t = (*stopped)[0].tokens;
  EXPECT_EQ(t.back(), second_token);
  EXPECT_LE(t.size(), 2u);
  EXPECT_EQ((*stopped)[0].end_reason, EndReason::kStop);
  EXPECT_EQ((*stopped)[1].end_reason, EndReason::kLength);
  EXPECT_EQ((*stopped)[1].tokens, (*res)[1].tokens);
}

TEST_F(OfflineRunTest, PromptScoresDoNotDependOnTheChunkSize) {
  auto b = backend(2);
  const std::vector<int32_t> ids = requests(3)[2].prompt;
  const auto whole = scores(*b, ids, 4, 512);
  const auto one_by_one = scores(*b, ids, 4, 1);
  ASSERT_EQ(whole.size(), ids.size());
  ASSERT_EQ(one_by_one.size(), ids.size());
  for (size_t p = 0; p < ids.size(); ++p) {
    ASSERT_EQ(whole[p].top.size(), 4u);
    EXPECT_EQ(whole[p].id, p + 1 < ids.size() ? ids[p + 1] : -1) << p;
    EXPECT_EQ(one_by_one[p].id, whole[p].id);
    EXPECT_NEAR(one_by_one[p].logprob, whole[p].logprob, 1e-6);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(whole[p].top[k].id, one_by_one[p].top[k].id);
      EXPECT_NEAR(whole[p].top[k].logprob, one_by_one[p].top[k].logprob, 1e-6);
    }
  }
}

TEST_F(OfflineRunTest, PromptScoresAreTheWholeDistribution) {
  // top = the vocabulary: every token once, most likely first, the
  // probabilities summing to 1, the target's logprob among them.
  auto b = backend(2);
  const std::vector<int32_t> ids = requests(4)[3].prompt;
  const auto full = scores(*b, ids, kVocab, 512);
  ASSERT_EQ(full.size(), ids.size());
  for (size_t p = 0; p < ids.size(); ++p) {
    ASSERT_EQ(full[p].top.size(), static_cast<size_t>(kVocab));
    double mass = 0.0;
    std::vector<bool> seen(kVocab, false);
    for (size_t k = 0; k < full[p].top.size(); ++k) {
      const TokenLogprob& t = full[p].top[k];
      ASSERT_FALSE(seen[t.id]);
      seen[t.id] = true;
      mass += std::exp(static_cast<double>(t.logprob));
      if (k > 0) {
        EXPECT_LE(t.logprob, full[p].top[k - 1].logprob);
      }
      if (t.id == full[p].id) {
        EXPECT_EQ(t.logprob, full[p].logprob);
      }
    }
    EXPECT_NEAR(mass, 1.0, 1e-4);
  }
}

TEST_F(OfflineRunTest, ScoringSkipsThePrefixCache) {
  // The same 64-token prompt twice through one engine: the second would find
  // four cached blocks, which have no logits, so it must compute them again.
  auto b = backend(2);
  std::vector<int32_t> ids = requests(3)[2].prompt;
  ids.resize(64);
  Engine engine(*b, offline_engine_options(512, 0));
  EngineRequest r;
  r.prompt = ids;
  r.sampling.temperature = 0.0f;
  r.max_tokens = 1;
  r.prompt_logprobs = 2;
  auto first = run_offline(engine, {r});
  auto second = run_offline(engine, {r});
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ((*second)[0].prompt_logprobs.size(), ids.size());
  for (size_t p = 0; p < ids.size(); ++p) {
    EXPECT_EQ((*second)[0].prompt_logprobs[p].logprob, (*first)[0].prompt_logprobs[p].logprob);
  }
}

TEST_F(OfflineRunTest, BadRequestsFailUpFrontAndTheEngineGoesOn) {
  auto b = backend(1, /*n_blocks=*/8);  // 128 tokens of KV
  Engine engine(*b, offline_engine_options(512, 0));
  auto expect_error = [&](std::vector<EngineRequest> reqs, StatusCode code, const char* phrase) {
    auto res = run_offline(engine, reqs);
    ASSERT_FALSE(res.ok()) << phrase;
    EXPECT_EQ(res.status().code(), code);
    EXPECT_NE(res.status().message().find(phrase), std::string::npos) << res.status().message();
  };
  auto ok = requests(1);
  auto r = ok;
  r[0].prompt.clear();
  expect_error(r, StatusCode::kInvalidArgument, "prompt is empty");
  r = ok;
  r[0].max_tokens = 600;
  expect_error(r, StatusCode::kOutOfRange, "exceed the context");
  r = ok;
  r[0].max_tokens = 100;
  r[0].prompt.resize(60, 1);
  expect_error(r, StatusCode::kOutOfRange, "KV cache");
  r = ok;
  r[0].sampling.top_p = 0.0f;
  expect_error(r, StatusCode::kInvalidArgument, "top_p");
  r = ok;
  r[0].prompt_logprobs = kVocab + 1;
  expect_error(r, StatusCode::kInvalidArgument, "prompt_logprobs");
  // A prompt id past the tokenizer (a padding row) is refused when the
  // scheduler takes the request: the run fails, naming it.
  r = ok;
  r[0].prompt.push_back(kVocab + 3);
  expect_error(r, StatusCode::kInvalidArgument, "not in the vocabulary");
  // And the engine still serves.
  auto res = run_offline(engine, ok);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ((*res)[0].tokens.size(), static_cast<size_t>(ok[0].max_tokens));
}

}  // namespace
}  // namespace r1
