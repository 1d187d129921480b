// The engine thread over a real CPU backend: concurrent submissions give the
// same greedy tokens as running alone, cancellation frees blocks, a tiny KV
// cache forces preemption without changing outputs, the reasoning budget
// forces "</think>" (each path asserted: spent, zero, closed by the model,
// no room), and bad submissions are refused up front.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>

#include "engine/engine.h"
#include "engine/offline_run.h"
#include "model/cpu_backend.h"
#include "small_model.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using testing_model::kVocab;

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<bool> forced;
  EndReason finish = EndReason::kError;
  Status error;
};

Collected drain(RequestStream& stream) {
  Collected c;
  for (;;) {
    EngineEvent e = stream.next();
    if (e.token) {
      c.tokens.push_back(e.token->id);
      c.forced.push_back(e.forced);
    }
    if (e.finished) {
      c.finish = e.end_reason;
      c.error = e.error;
      return c;
    }
  }
}

class EngineLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("engine-loop-" + std::to_string(getpid()));
    files_ = testing_model::write_model(config_, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CpuBackend> backend(int32_t n_blocks, int n_threads = 2) {
    CpuBackendOptions o{n_threads, n_blocks, 16};
    o.precision = precision_;
    auto b = CpuBackend::create(config_, files_, kVocab, o);
    EXPECT_TRUE(b.ok()) << b.status().message();
    return std::move(b).value();
  }

  static EngineRequest request(int i) {
    std::mt19937 rng(100 + i);
    EngineRequest r;
    r.id = "r" + std::to_string(i);
    const int len = 1 + (i * 29) % 70;
    for (int k = 0; k < len; ++k) r.prompt.push_back(static_cast<int32_t>(rng() % kVocab));
    r.sampling.temperature = 0.0f;
    r.max_tokens = 5 + i % 7;
    return r;
  }

  // Greedy tokens of a request run alone, stepped without the engine's
  // thread on a fresh backend.
  std::vector<int32_t> alone(const EngineRequest& r, int n_threads = 2) {
    auto b = backend(64, n_threads);
    Engine engine(*b, offline_engine_options(512, 0));
    auto res = run_offline(engine, {r});
    EXPECT_TRUE(res.ok()) << res.status().message();
    return res.ok() ? (*res)[0].tokens : std::vector<int32_t>{};
  }

  ModelConfig config_ = testing_model::small_config();
  WeightPrecision precision_;  // the file's dtypes unless a test sets one
  fs::path dir_;
  std::shared_ptr<const WeightFiles> files_;
};

TEST_F(EngineLoopTest, ConcurrentSubmissionsMatchRunningAlone) {
  auto b = backend(256);
  Engine engine(*b, EngineOptions{.max_batched_tokens = 48, .max_seqs = 64});
  const int n = 24;
  std::vector<std::shared_ptr<RequestStream>> streams(n);
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = t; i < n; i += 4) {
        auto s = engine.submit(request(i));
        ASSERT_TRUE(s.ok()) << s.status().message();
        streams[i] = *s;
      }
    });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < n; ++i) {
    Collected got = drain(*streams[i]);
    EXPECT_EQ(got.finish, EndReason::kLength) << i;
    EXPECT_EQ(got.tokens, alone(request(i))) << "request " << i;
  }
}

TEST_F(EngineLoopTest, TiledGreedyOutputIgnoresBatchAndThreads) {
  // The bf16, int8 and int4 kernels work in tiles of several rows and
  // tokens (int8 and int4 quantise activations per token row) and compute
  // each (row, token) the same way in every tile shape: a request's greedy
  // tokens are the same alone on 1 or 3 threads as among 16 others on 2.
  for (DType dt : {DType::kBF16, DType::kQ8, DType::kQ4}) {
    precision_.layers = dt;
    auto b = backend(256);
    Engine engine(*b, EngineOptions{.max_batched_tokens = 40, .max_seqs = 64});
    const int n = 16;
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < n; ++i) {
      auto s = engine.submit(request(i));
      ASSERT_TRUE(s.ok()) << s.status().message();
      streams.push_back(*s);
    }
    for (int i = 0; i < n; ++i) {
      Collected got = drain(*streams[i]);
      EXPECT_EQ(got.tokens, alone(request(i), 1 + 2 * (i % 2))) << dtype_name(dt) << " " << i;
    }
  }
}

TEST_F(EngineLoopTest, CancelEndsTheRequestAndFreesItsBlocks) {
  auto b = backend(64);
  Engine engine(*b, EngineOptions{});
  EngineRequest r = request(3);
  r.max_tokens = 400;
  auto s = engine.submit(r);
  ASSERT_TRUE(s.ok());
  EngineEvent first = (*s)->next();
  ASSERT_TRUE(first.token.has_value());
  engine.cancel(r.id);
  Collected rest = drain(**s);
  EXPECT_EQ(rest.finish, EndReason::kAborted);
  EXPECT_LT(rest.tokens.size(), 399u);
  // The blocks come back (the stats snapshot follows the step that freed them).
  auto other = engine.submit(request(4));
  ASSERT_TRUE(other.ok());
  drain(**other);
  EXPECT_EQ(engine.stats().n_running, 0);
  EXPECT_EQ(engine.stats().n_free_blocks, engine.stats().n_blocks);
}

TEST_F(EngineLoopTest, TinyCacheForcesPreemptionWithUnchangedOutputs) {
  // 10 blocks of 16 tokens for 8 requests of up to ~80 tokens each.
  auto b = backend(10);
  Engine engine(*b, EngineOptions{.max_batched_tokens = 64, .max_seqs = 64});
  std::vector<EngineRequest> reqs;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) {
    EngineRequest r = request(i);
    r.max_tokens = 20;
    reqs.push_back(r);
    auto s = engine.submit(r);
    ASSERT_TRUE(s.ok()) << s.status().message();
    streams.push_back(*s);
  }
  for (int i = 0; i < 8; ++i) {
    Collected got = drain(*streams[i]);
    EXPECT_EQ(got.finish, EndReason::kLength) << i;
    EXPECT_EQ(got.tokens, alone(reqs[i])) << "request " << i;
  }
  EXPECT_GT(engine.stats().n_preemptions, 0);
  EXPECT_EQ(engine.stats().n_free_blocks, engine.stats().n_blocks);
}

// A reasoning request whose </think> stand-in is an id the greedy model
// does not produce in its first `n` tokens (so only the budget can close the
// thinking), or, with `closes_at` >= 0, the id it produces at that index (so
// the model closes it itself).
EngineRequest reasoning_request(const std::vector<int32_t>& greedy, int closes_at) {
  EngineRequest r;
  r.starts_in_reasoning = true;
  if (closes_at >= 0) {
    r.think_end_id = greedy[static_cast<size_t>(closes_at)];
  } else {
    int32_t id = kVocab - 1;
    while (std::find(greedy.begin(), greedy.end(), id) != greedy.end()) --id;
    r.think_end_id = id;
  }
  return r;
}

class ReasoningBudgetTest : public EngineLoopTest {
 protected:
  // request(5) run alone, greedy, for 12 tokens; then the same request with
  // a reasoning budget, collected from the engine.
  void SetUp() override {
    EngineLoopTest::SetUp();
    base_ = request(5);
    base_.max_tokens = 12;
    greedy_ = alone(base_);
    ASSERT_EQ(greedy_.size(), 12u);
  }
  EngineRequest with_budget(int32_t budget, int closes_at, int32_t max_tokens = 12) {
    EngineRequest r = reasoning_request(greedy_, closes_at);
    EngineRequest out = base_;
    out.starts_in_reasoning = true;
    out.think_end_id = r.think_end_id;
    out.max_reasoning_tokens = budget;
    out.max_tokens = max_tokens;
    out.budget_close_ids = {11, r.think_end_id, 22};
    return out;
  }
  Collected run(const EngineRequest& r) {
    auto b = backend(64);
    Engine engine(*b, EngineOptions{});
    auto s = engine.submit(r);
    EXPECT_TRUE(s.ok());
    Collected got = drain(**s);
    EXPECT_EQ(engine.stats().n_free_blocks, engine.stats().n_blocks);
    return got;
  }
  EngineRequest base_;
  std::vector<int32_t> greedy_;
};

TEST_F(ReasoningBudgetTest, SpentBudgetForcesTheCloseTokens) {
  const EngineRequest r = with_budget(3, -1);
  Collected got = run(r);
  EXPECT_EQ(got.finish, EndReason::kLength);
  ASSERT_EQ(got.tokens.size(), 12u);  // max_tokens counts the forced ones
  // Three sampled reasoning tokens (the greedy ones), then the forced ids.
  EXPECT_EQ(std::vector<int32_t>(got.tokens.begin(), got.tokens.begin() + 3),
            std::vector<int32_t>(greedy_.begin(), greedy_.begin() + 3));
  EXPECT_EQ(std::vector<int32_t>(got.tokens.begin() + 3, got.tokens.begin() + 6),
            r.budget_close_ids);
  for (size_t i = 0; i < got.forced.size(); ++i) {
    EXPECT_EQ(got.forced[i], i >= 3 && i < 6) << i;
  }
}

TEST_F(ReasoningBudgetTest, ZeroBudgetClosesBeforeAnyReasoningToken) {
  const EngineRequest r = with_budget(0, -1);
  Collected got = run(r);
  EXPECT_EQ(got.finish, EndReason::kLength);
  ASSERT_EQ(got.tokens.size(), 12u);
  EXPECT_EQ(std::vector<int32_t>(got.tokens.begin(), got.tokens.begin() + 3), r.budget_close_ids);
  for (size_t i = 0; i < got.forced.size(); ++i) EXPECT_EQ(got.forced[i], i < 3) << i;
}

TEST_F(ReasoningBudgetTest, TheModelClosingItselfWithinTheBudgetForcesNothing) {
  Collected got = run(with_budget(3, /*closes_at=*/1));
  EXPECT_EQ(got.tokens, greedy_);
  for (bool f : got.forced) EXPECT_FALSE(f);
}

TEST_F(ReasoningBudgetTest, ACloseThatDoesNotFitEndsTheRequestAtLength) {
  // After 3 sampled tokens, 3 forced ones would leave no room for an answer
  // token under max_tokens 6: the request ends there, inside the thinking.
  Collected got = run(with_budget(3, -1, /*max_tokens=*/6));
  EXPECT_EQ(got.finish, EndReason::kLength);
  EXPECT_EQ(got.tokens, std::vector<int32_t>(greedy_.begin(), greedy_.begin() + 3));
  for (bool f : got.forced) EXPECT_FALSE(f);
}

// A generation resumed from any point of its output (as a checkpoint holds
// it: the tokens so far and which of them were forced) goes on with the
// tokens and forced flags of the uninterrupted run and ends the same way:
// seeded sampling with penalties, a reasoning budget whose close can be cut
// anywhere, on a fresh engine (all recomputed) and on the same one (prefix
// cache hits).
TEST_F(ReasoningBudgetTest, AResumedGenerationGoesOnAsIfUninterrupted) {
  EngineRequest r = with_budget(4, -1, /*max_tokens=*/14);
  r.sampling.temperature = 0.9f;
  r.sampling.top_k = 40;
  r.sampling.seed = 1234;
  r.sampling.frequency_penalty = 0.5f;
  r.sampling.repetition_penalty = 1.2f;
  const Collected whole = run(r);
  ASSERT_EQ(whole.tokens.size(), 14u);
  ASSERT_TRUE(std::count(whole.forced.begin(), whole.forced.end(), true) == 3);
  auto b = backend(64);
  Engine shared(*b, EngineOptions{});
  ASSERT_TRUE(drain(**shared.submit(r)).error.ok());
  for (size_t cut = 1; cut < whole.tokens.size(); ++cut) {
    EngineRequest resumed = r;
    resumed.id = "resumed-" + std::to_string(cut);
    resumed.resume_output.assign(whole.tokens.begin(), whole.tokens.begin() + cut);
    for (size_t i = 0; i < cut; ++i) {
      if (whole.forced[i]) resumed.resume_forced.push_back(static_cast<int32_t>(i));
    }
    for (bool fresh : {true, false}) {
      std::unique_ptr<CpuBackend> own = fresh ? backend(64) : nullptr;
      std::optional<Engine> fresh_engine;
      if (fresh) fresh_engine.emplace(*own, EngineOptions{});
      Engine& engine = fresh ? *fresh_engine : shared;
      auto s = engine.submit(resumed);
      ASSERT_TRUE(s.ok()) << s.status().message();
      const Collected rest = drain(**s);
      EXPECT_EQ(rest.finish, whole.finish) << cut;
      EXPECT_EQ(rest.tokens, std::vector<int32_t>(whole.tokens.begin() + cut, whole.tokens.end()))
          << "cut at " << cut << (fresh ? " (fresh engine)" : " (prefix cache)");
      EXPECT_EQ(rest.forced, std::vector<bool>(whole.forced.begin() + cut, whole.forced.end()))
          << cut;
    }
  }
}

TEST_F(EngineLoopTest, BadResumptionsAreRefused) {
  auto b = backend(16);
  Engine engine(*b, EngineOptions{});
  EngineRequest r = request(1);
  r.max_tokens = 4;
  r.resume_output = {1, 2, 3, 4};  // nothing left to generate
  auto s = engine.submit(r);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(drain(**s).finish, EndReason::kError);
  r.resume_output = {1, 2};
  r.sampling.temperature = 0.7f;  // sampled, without the seed it was drawn with
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kInvalidArgument);
  r.sampling.seed = 9;
  r.resume_forced = {1, 0};
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kInvalidArgument);
  r.resume_forced = {};
  r.stop_ids = {2};  // it had ended
  s = engine.submit(r);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(drain(**s).finish, EndReason::kError);
}

TEST_F(EngineLoopTest, BadSubmissionsAreRefused) {
  auto b = backend(8);
  Engine engine(*b, EngineOptions{});
  EngineRequest r = request(1);
  r.sampling.top_p = 2.0f;
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kInvalidArgument);
  r = request(1);
  r.prompt.clear();
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kInvalidArgument);
  r = request(1);
  r.max_tokens = 600;
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kOutOfRange);
  r = request(1);
  r.max_tokens = 200;  // fits the context, not the 128-token cache: retrying cannot help
  EXPECT_EQ(engine.submit(r).status().code(), StatusCode::kOutOfRange);
  Engine no_queue(*b, EngineOptions{.max_queue = 0});
  EXPECT_EQ(no_queue.submit(request(1)).status().code(), StatusCode::kResourceExhausted);
  // A token outside the vocabulary is refused by the scheduler: an error event.
  r = request(1);
  r.prompt.push_back(kVocab + 5);
  auto s = engine.submit(r);
  ASSERT_TRUE(s.ok());
  Collected got = drain(**s);
  EXPECT_EQ(got.finish, EndReason::kError);
  EXPECT_FALSE(got.error.ok());
}

}  // namespace
}  // namespace r1
