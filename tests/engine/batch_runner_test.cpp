// BatchRunner over a real CPU backend with a small random model: batch
// invariance (a request's greedy tokens do not depend on what it is batched
// with, how prompts are chunked, or the thread count), stops, and errors.
#include "engine/batch_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "model/cpu_backend.h"
#include "small_model.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using testing_model::kVocab;
using testing_model::small_config;
using testing_model::write_model;

class BatchRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("batch-runner-" + std::to_string(getpid()));
    files_ = write_model(config_, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CpuBackend> backend(int threads, int32_t n_blocks = 512) {
    auto b = CpuBackend::create(config_, files_, kVocab, CpuBackendOptions{threads, n_blocks, 16});
    EXPECT_TRUE(b.ok()) << b.status().message();
    return std::move(b).value();
  }

  static std::vector<GenerationRequest> requests(int n) {
    std::mt19937 rng(7);
    std::vector<GenerationRequest> out(n);
    for (int i = 0; i < n; ++i) {
      const int len = 1 + (i * 37) % 90;  // 1 .. 90 tokens
      for (int k = 0; k < len; ++k) out[i].prompt.push_back(static_cast<int32_t>(rng() % kVocab));
      out[i].sampling.temperature = 0.0f;
      out[i].max_tokens = 6 + i % 5;
    }
    return out;
  }

  ModelConfig config_ = small_config();
  fs::path dir_;
  std::shared_ptr<const WeightFiles> files_;
};

TEST_F(BatchRunnerTest, GreedyTokensDoNotDependOnTheBatch) {
  const auto reqs = requests(32);
  auto alone_backend = backend(1);
  std::vector<std::vector<int32_t>> alone;
  for (const auto& r : reqs) {
    BatchRunner runner(*alone_backend, BatchRunnerOptions{512, 0});
    auto res = runner.generate(std::span(&r, 1));
    ASSERT_TRUE(res.ok()) << res.status().message();
    alone.push_back((*res)[0].tokens);
    EXPECT_EQ(alone.back().size(), static_cast<size_t>(r.max_tokens));
  }
  // All 32 together, prompts chunked by a 64-token budget (prefill chunks and
  // decodes share steps), on a pool of three threads.
  auto together_backend = backend(3);
  BatchRunner runner(*together_backend, BatchRunnerOptions{64, 0});
  auto res = runner.generate(reqs);
  ASSERT_TRUE(res.ok()) << res.status().message();
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ((*res)[i].tokens, alone[i]) << "request " << i;
  EXPECT_GT(runner.stats().steps, 10);
}

TEST_F(BatchRunnerTest, NeverSamplesPaddingRows) {
  auto b = backend(2);
  BatchRunner runner(*b, BatchRunnerOptions{512, 0});
  auto reqs = requests(4);
  for (auto& r : reqs) r.sampling = SamplingParams{.temperature = 5.0f};
  auto res = runner.generate(reqs);
  ASSERT_TRUE(res.ok());
  for (const auto& r : *res) {
    for (int32_t id : r.tokens) EXPECT_LT(id, kVocab);
  }
}

TEST_F(BatchRunnerTest, StopIdEndsTheRequest) {
  auto b = backend(2);
  auto reqs = requests(2);
  BatchRunner first(*b, BatchRunnerOptions{512, 0});
  auto res = first.generate(reqs);
  ASSERT_TRUE(res.ok());
  const int32_t second_token = (*res)[0].tokens[1];
  reqs[0].stop_ids = {second_token};
  BatchRunner again(*b, BatchRunnerOptions{512, 0});
  auto stopped = again.generate(reqs);
  ASSERT_TRUE(stopped.ok());
  // Stops at the first occurrence of the stop id, which is included.
  const auto& t = (*stopped)[0].tokens;
  EXPECT_EQ(t.back(), second_token);
  EXPECT_LE(t.size(), 2u);
  EXPECT_EQ((*stopped)[0].finish_reason, EndReason::kStop);
  EXPECT_EQ((*stopped)[1].finish_reason, EndReason::kLength);
  EXPECT_EQ((*stopped)[1].tokens, (*res)[1].tokens);
}

TEST_F(BatchRunnerTest, ScoreDoesNotDependOnTheChunkSize) {
  auto b = backend(2);
  auto reqs = requests(3);
  const auto& ids = reqs[2].prompt;
  BatchRunner whole(*b, BatchRunnerOptions{512, 0});
  BatchRunner one_by_one(*b, BatchRunnerOptions{1, 0});
  auto a = whole.score(ids, 4);
  auto c = one_by_one.score(ids, 4);
  ASSERT_TRUE(a.ok() && c.ok());
  ASSERT_EQ(a->size(), ids.size());
  for (size_t p = 0; p < ids.size(); ++p) {
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ((*a)[p][k].id, (*c)[p][k].id);
      EXPECT_NEAR((*a)[p][k].logprob, (*c)[p][k].logprob, 1e-6);
    }
  }
}

TEST_F(BatchRunnerTest, BadRequestsFailUpFrontAndTheRunnerGoesOn) {
  auto b = backend(1, /*n_blocks=*/8);  // 128 tokens of KV
  BatchRunner runner(*b, BatchRunnerOptions{512, 0});
  auto expect_error = [&](std::vector<GenerationRequest> reqs, StatusCode code,
                          const char* phrase) {
    auto res = runner.generate(reqs);
    ASSERT_FALSE(res.ok()) << phrase;
    EXPECT_EQ(res.status().code(), code);
    EXPECT_NE(res.status().message().find(phrase), std::string::npos) << res.status().message();
  };
  auto ok = requests(1);
  auto r = ok;
  r[0].prompt.clear();
  expect_error(r, StatusCode::kInvalidArgument, "empty prompt");
  r = ok;
  r[0].prompt.push_back(kVocab + 3);  // a padding row is not a token
  expect_error(r, StatusCode::kInvalidArgument, "not in the vocabulary");
  r = ok;
  r[0].max_tokens = 600;
  expect_error(r, StatusCode::kOutOfRange, "exceed the context");
  r = requests(8);
  for (auto& q : r) q.max_tokens = 60;
  expect_error(r, StatusCode::kResourceExhausted, "KV blocks");
  r = ok;
  r[0].sampling.top_p = 0.0f;
  expect_error(r, StatusCode::kInvalidArgument, "top_p");
  // Every failed run gave its blocks back; the next one runs.
  EXPECT_EQ(runner.n_free_blocks(), 8);
  auto res = runner.generate(ok);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(runner.n_free_blocks(), 8);
}

}  // namespace
}  // namespace r1
