// The generation routes against a scripted engine (no model, no sockets):
// the text pipeline (detokenize -> reasoning split), the whole and SSE
// responders, routing among loaded versions (canary stickiness, NAME@VERSION,
// allow-lists), and engine refusals.
#include "server/api/generation_routes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../fuzz/tiny_tokenizer.h"
#include "engine/engine_client.h"
#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/api/resumption.h"
#include "server/model_table.h"
#include "server/ops/memory_cache_store.h"

namespace r1 {
namespace {

using nlohmann::json;

constexpr int32_t kThinkEnd = 305;  // "</think>" in the tiny tokenizer
constexpr int32_t kEos = 301;

// Answers every request with the same tokens, then a stop; or refuses it.
class ScriptedEngine : public EngineClient {
 public:
  explicit ScriptedEngine(std::vector<int32_t> tokens) : tokens_(std::move(tokens)) {}

  Result<std::shared_ptr<RequestStream>> submit(EngineRequest request) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++n_submitted_;
    last_ = request;
    if (refuse_) return resource_exhausted("queue full");
    auto stream = std::make_shared<RequestStream>();
    const int32_t n = std::min<int32_t>(request.max_tokens, static_cast<int32_t>(tokens_.size()));
    // A resumed request goes on after the output it was given.
    for (int32_t i = static_cast<int32_t>(request.resume_output.size()); i < n; ++i) {
      EngineEvent e;
      e.token = SampledToken{tokens_[static_cast<size_t>(i)], -0.5f, {}};
      e.n_prompt_tokens = static_cast<int32_t>(request.prompt.size());
      e.finished = i + 1 == n;
      e.end_reason =
          n < static_cast<int32_t>(tokens_.size()) ? EndReason::kLength : EndReason::kStop;
      stream->push(e);
    }
    return stream;
  }
  void cancel(const std::string&) override {}
  SchedulerStats stats() const override { return {}; }

  int n_submitted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return n_submitted_;
  }
  EngineRequest last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  void refuse(bool r) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_ = r;
  }

 private:
  std::vector<int32_t> tokens_;
  mutable std::mutex mu_;
  int n_submitted_ = 0;
  EngineRequest last_;
  bool refuse_ = false;
};

std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> out;
  for (unsigned char c : s) out.push_back(c);  // the tiny vocabulary: id = byte
  return out;
}

std::shared_ptr<ServedModel> version(const std::string& name, const std::string& v,
                                     EngineClient* engine) {
  auto m = std::make_shared<ServedModel>();
  const auto [tokenizer_json, config_json] = fuzz::tiny_tokenizer_files();
  m->tokenizer = std::make_shared<const Tokenizer>(
      std::move(Tokenizer::from_json(tokenizer_json, config_json)).value());
  m->chat_template = *ChatTemplate::detect(m->tokenizer->chat_template_source(), fuzz::kBos);
  m->name = name;
  m->version = v;
  m->context_len = 4096;  // room for /predict's default 1024 tokens
  m->stop_ids = {kEos};
  m->think_start_id = m->tokenizer->token_to_id("<think>");
  m->think_end_id = m->tokenizer->token_to_id("</think>");
  m->engine = engine;
  return m;
}

class GenerationRoutesTest : public ::testing::Test {
 protected:
  GenerationRoutesTest() {
    // Version 1 thinks "ok" then answers "Yes"; version 2 answers "No".
    std::vector<int32_t> one = bytes("ok");
    one.push_back(kThinkEnd);
    for (int32_t t : bytes("\n\nYes")) one.push_back(t);
    std::vector<int32_t> two = bytes("hm");
    two.push_back(kThinkEnd);
    for (int32_t t : bytes("\n\nNo")) two.push_back(t);
    e1_ = std::make_unique<ScriptedEngine>(one);
    e2_ = std::make_unique<ScriptedEngine>(two);
    EXPECT_TRUE(table_.add(version("tiny", "1", e1_.get())).ok());
    EXPECT_TRUE(table_.add(version("tiny", "2", e2_.get())).ok());
    ctx_ = GenerationRoutesContext{&table_, &metrics_, &access_log_, &in_flight_,
                                   nullptr, nullptr,   nullptr};
  }

  static HttpRequest chat(const json& extra = json::object()) {
    json body = {{"model", "tiny"},
                 {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                 {"max_tokens", 32}};
    body.update(extra);
    HttpRequest req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = body.dump();
    req.request_id = "test";
    return req;
  }

  std::unique_ptr<ScriptedEngine> e1_, e2_;
  ModelTable table_;
  Metrics metrics_;
  AccessLog access_log_;
  std::atomic<int> in_flight_{0};
  GenerationRoutesContext ctx_;
};

TEST_F(GenerationRoutesTest, AWholeAnswerSplitsReasoningFromContent) {
  const HttpResponse res = handle_chat_completions(ctx_, chat());
  ASSERT_EQ(res.status, 200) << res.body;
  const json j = json::parse(res.body);
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["reasoning_content"], "ok");
  // Content as the model wrote it after </think> (reasoning_splitter.h).
  EXPECT_EQ(msg["content"], "\n\nYes");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);  // o k </think> \n \n Y e s
  EXPECT_EQ(res.headers.at("X-R1serve-Model-Version"), "tiny@1");
  // The prompt the engine got is the chat template's, ending inside <think>.
  const EngineRequest r = e1_->last();
  EXPECT_EQ(r.max_tokens, 32);
  EXPECT_EQ(e2_->n_submitted(), 0);
}

struct CollectingWriter : StreamWriter {
  std::string out;
  bool write(const std::string& bytes) override {
    out += bytes;
    return true;
  }
  bool client_connected() const override { return true; }
};

TEST_F(GenerationRoutesTest, AStreamCarriesTheSameTextAsSseChunks) {
  HttpResponse res = handle_chat_completions(ctx_, chat({{"stream", true}}));
  ASSERT_EQ(res.status, 200) << res.body;
  ASSERT_TRUE(res.stream);
  CollectingWriter w;
  {
    // The request counts as in flight until its stream function is gone.
    auto stream = std::move(res.stream);
    EXPECT_EQ(in_flight_.load(), 1);
    stream(w);
  }
  std::string reasoning, content, finish;
  size_t at = 0;
  bool done = false;
  while ((at = w.out.find("data: ", at)) != std::string::npos) {
    const size_t end = w.out.find("\n\n", at);
    const std::string data = w.out.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    const json chunk = json::parse(data);
    const json& d = chunk["choices"][0]["delta"];
    if (d.contains("reasoning_content") && d["reasoning_content"].is_string()) {
      reasoning += d["reasoning_content"].get<std::string>();
    }
    if (d.contains("content") && d["content"].is_string())
      content += d["content"].get<std::string>();
    if (chunk["choices"][0]["finish_reason"].is_string()) {
      finish = chunk["choices"][0]["finish_reason"].get<std::string>();
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(reasoning, "ok");
  EXPECT_EQ(content, "\n\nYes");
  EXPECT_EQ(finish, "stop");
  EXPECT_EQ(in_flight_.load(), 0);
}

TEST_F(GenerationRoutesTest, NamedVersionsAndUnknownModels) {
  HttpResponse res = handle_chat_completions(ctx_, chat({{"model", "tiny@2"}}));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["choices"][0]["message"]["content"], "\n\nNo");
  EXPECT_EQ(res.headers.at("X-R1serve-Model-Version"), "tiny@2");
  res = handle_chat_completions(ctx_, chat({{"model", "gpt-4"}}));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(json::parse(res.body)["error"]["code"], "model_not_found");
  EXPECT_EQ(e1_->n_submitted() + e2_->n_submitted(), 1);
}

TEST_F(GenerationRoutesTest, ACanaryIsStickyPerUser) {
  ASSERT_TRUE(table_.set_canary("tiny", "2", 50).ok());
  std::map<std::string, std::set<std::string>> seen;
  for (int i = 0; i < 40; ++i) {
    const std::string user = "u" + std::to_string(i % 8);
    const HttpResponse res = handle_chat_completions(ctx_, chat({{"user", user}}));
    ASSERT_EQ(res.status, 200);
    seen[user].insert(res.headers.at("X-R1serve-Model-Version"));
  }
  std::set<std::string> versions;
  for (const auto& [user, v] : seen) {
    EXPECT_EQ(v.size(), 1u) << user;
    versions.insert(*v.begin());
  }
  // Eight users at 50%: both versions are seen unless the hash is badly
  // skewed (probability 2 / 256 for a fair one).
  EXPECT_EQ(versions.size(), 2u);
}

TEST_F(GenerationRoutesTest, AKeyOnlySeesItsModels) {
  const HttpRequest req = chat();
  CallContext call;
  call.allowed_models = {"other"};
  const HttpResponse res = handle_chat_completions(ctx_, req, call);
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(e1_->n_submitted(), 0);
  call.allowed_models = {"tiny"};
  EXPECT_EQ(handle_chat_completions(ctx_, req, call).status, 200);
}

// The guard's callbacks: the parsed body once (the audit trail's prompt),
// and the usage with the model and version that served the call; the
// request metric carries the version too.
TEST_F(GenerationRoutesTest, TheCallIsToldItsBodyAndItsUsageByVersion) {
  int n_bodies = 0;
  json seen_body;
  CallUsage last;
  CallContext call;
  call.on_body = [&](const json& b) {
    ++n_bodies;
    seen_body = b;
  };
  call.on_usage = [&](const CallUsage& u) { last = u; };
  const HttpResponse res = handle_chat_completions(ctx_, chat({{"model", "tiny@2"}}), call);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(n_bodies, 1);
  EXPECT_EQ(seen_body["messages"][0]["content"], "Hi");
  EXPECT_EQ(last.model, "tiny");
  EXPECT_EQ(last.version, "2");
  EXPECT_EQ(last.completion_tokens, 7);  // "hm", </think>, "\n\nNo"
  EXPECT_EQ(last.prompt_tokens, static_cast<int64_t>(e2_->last().prompt.size()));
  EXPECT_NE(
      metrics_.serialize().find(
          R"(r1serve_requests_total{model="tiny",route="/v1/chat/completions",status="200",version="2"})"),
      std::string::npos)
      << metrics_.serialize();
}

// A stream settles its call (the ledger line, the audit record) once, after
// the last usage report and before the client can read the end: the usage
// chunk and [DONE] come after it.
TEST_F(GenerationRoutesTest, AStreamSettlesItsCallBeforeItsEnd) {
  CollectingWriter w;
  int settles = 0;
  size_t written_at_settle = 0;
  CallUsage last, at_settle;
  CallContext call;
  call.on_usage = [&](const CallUsage& u) { last = u; };
  call.on_settle = [&] {
    ++settles;
    written_at_settle = w.out.size();
    at_settle = last;
  };
  HttpResponse res = handle_chat_completions(
      ctx_, chat({{"stream", true}, {"stream_options", {{"include_usage", true}}}}), call);
  ASSERT_EQ(res.status, 200) << res.body;
  res.stream(w);
  EXPECT_EQ(settles, 1);
  EXPECT_EQ(at_settle.completion_tokens, 8);  // o k </think> \n \n Y e s
  EXPECT_EQ(last.completion_tokens, at_settle.completion_tokens);
  const std::string after = w.out.substr(written_at_settle);
  EXPECT_NE(after.find("\"usage\":{"), std::string::npos) << after;
  EXPECT_NE(after.find("data: [DONE]"), std::string::npos) << after;
}

// Collects a stream's SSE events; write() fails from the `fail_at`-th call
// on (a client that leaves).
class Collector : public StreamWriter {
 public:
  explicit Collector(int fail_at = -1) : fail_at_(fail_at) {}
  bool write(const std::string& bytes) override {
    if (fail_at_ >= 0 && n_++ >= fail_at_) return false;
    text += bytes;
    return true;
  }
  bool client_connected() const override { return fail_at_ < 0 || n_ < fail_at_; }
  // The reasoning and content the chunks carried, and the last event id.
  std::string reasoning, content, last_id;
  int roles = 0;
  void parse() {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("id: ", 0) == 0) last_id = line.substr(4);
      if (line.rfind("data: {", 0) != 0) continue;
      const json j = json::parse(line.substr(6));
      for (const json& c : j.value("choices", json::array())) {
        const json& d = c["delta"];
        roles += d.contains("role");
        if (d.contains("reasoning_content") && d["reasoning_content"].is_string()) {
          reasoning += d["reasoning_content"].get<std::string>();
        }
        if (d.contains("content") && d["content"].is_string()) {
          content += d["content"].get<std::string>();
        }
      }
    }
  }
  std::string text;

 private:
  int fail_at_;
  int n_ = 0;
};

// A client leaves a stream; it comes back with Last-Event-ID and gets only
// what it lacks, generated after the checkpoint's output (the engine is
// handed that output to go on from), with usage counted once. Another
// caller cannot resume it.
TEST_F(GenerationRoutesTest, AStreamTheClientLeftResumesWhereItsClientStopped) {
  Resumption resumption(std::make_unique<MemoryCacheStore>(1 << 20), ResumptionOptions{1, 60});
  ctx_.resumption = &resumption;
  CallUsage first_usage, second_usage;
  CallContext alice;
  alice.principal = "alice";
  alice.on_usage = [&](const CallUsage& u) { first_usage = u; };
  const HttpRequest req = chat({{"stream", true}});
  HttpResponse res = handle_chat_completions(ctx_, req, alice);
  ASSERT_TRUE(res.stream);
  Collector leaves(3);  // the role chunk and two more, then gone
  res.stream(leaves);
  leaves.parse();
  ASSERT_EQ(leaves.last_id, "test:2");
  EXPECT_EQ(leaves.reasoning, "ok");

  HttpRequest again = req;
  again.headers.emplace("Last-Event-ID", leaves.last_id);
  CallContext bob;
  bob.principal = "bob";
  EXPECT_EQ(handle_chat_completions(ctx_, again, bob).status, 404);
  alice.on_usage = [&](const CallUsage& u) { second_usage = u; };
  res = handle_chat_completions(ctx_, again, alice);
  ASSERT_EQ(res.status, 200) << res.body;
  ASSERT_TRUE(res.stream);
  Collector rest;
  res.stream(rest);
  rest.parse();
  EXPECT_EQ(rest.roles, 0);
  EXPECT_EQ(leaves.reasoning + rest.reasoning, "ok");
  EXPECT_EQ(leaves.content + rest.content, "\n\nYes");
  const std::vector<int32_t> resumed_from = e1_->last().resume_output;
  ASSERT_GE(resumed_from.size(), 2u);
  EXPECT_EQ(resumed_from[0], 'o');
  EXPECT_EQ(resumed_from[1], 'k');
  // Eight tokens in all ("ok", </think>, "\n\nYes"): what the first call
  // counted is not counted again.
  EXPECT_EQ(first_usage.completion_tokens + second_usage.completion_tokens, 8);
  EXPECT_EQ(second_usage.prompt_tokens, 0);
  EXPECT_EQ(first_usage.prompt_tokens, static_cast<int64_t>(e1_->last().prompt.size()));
  // Finished: nothing left to resume.
  EXPECT_EQ(handle_chat_completions(ctx_, again, alice).status, 404);
}

// ignore_eos leaves the model's end ids out of the engine request (the
// request's own stop ids stay); min_tokens masks the stop ids in sampling.
TEST_F(GenerationRoutesTest, IgnoreEosAndMinTokensReachTheEngine) {
  ASSERT_EQ(handle_chat_completions(ctx_, chat({{"stop_token_ids", {99}}})).status, 200);
  EXPECT_EQ(e1_->last().stop_ids, (std::vector<int32_t>{kEos, 99}));
  EXPECT_EQ(e1_->last().sampling.min_tokens, 0);
  ASSERT_EQ(handle_chat_completions(
                ctx_, chat({{"stop_token_ids", {99}}, {"ignore_eos", true}, {"min_tokens", 5}}))
                .status,
            200);
  EXPECT_EQ(e1_->last().stop_ids, (std::vector<int32_t>{99}));
  EXPECT_EQ(e1_->last().sampling.min_tokens, 5);
  EXPECT_EQ(e1_->last().sampling.min_tokens_ids, (std::vector<int32_t>{99}));
  // More than the context leaves: refused, never sent.
  const int before = e1_->n_submitted();
  json big = {{"min_tokens", 5000}};
  big["max_tokens"] = nullptr;
  EXPECT_EQ(handle_chat_completions(ctx_, chat(big)).status, 400);
  EXPECT_EQ(e1_->n_submitted(), before);
}

TEST_F(GenerationRoutesTest, AFullQueueIs429) {
  e1_->refuse(true);
  const HttpResponse res = handle_chat_completions(ctx_, chat());
  EXPECT_EQ(res.status, 429);
}

TEST_F(GenerationRoutesTest, PredictAnswersWithTheVersionItChose) {
  HttpRequest req = chat();
  req.path = "/predict";
  req.body = R"({"text": "Hi"})";
  const HttpResponse res = handle_predict(ctx_, req);
  ASSERT_EQ(res.status, 200) << res.body;
  const json j = json::parse(res.body);
  EXPECT_EQ(j["response"], "\n\nYes");
  EXPECT_EQ(j["reasoning"], "ok");
}

}  // namespace
}  // namespace r1
