// Output processing of one choice of a generation request: the engine
// events of its request go through the detokenizer, the stop strings and
// (chat only) the reasoning split, and come out as text deltas with their
// logprobs; the whole text, finish reason and timings are kept for the
// final answer, the access log and the metrics. The responders (whole JSON,
// SSE) only format what this produces.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/request_stream.h"
#include "server/api/openai_request.h"
#include "server/api/openai_response.h"
#include "server/api/reasoning_splitter.h"
#include "server/api/reasoning_token_counter.h"
#include "server/api/stop_matcher.h"
#include "server/served_model.h"
#include "tokenizer/incremental_detokenizer.h"

namespace r1 {

// What one event added to a choice's output.
struct ChoiceDelta {
  std::string reasoning;
  std::string content;
  std::vector<LogprobEntry> logprobs;
  bool finished = false;
  bool empty() const { return reasoning.empty() && content.empty() && logprobs.empty(); }
};

// One choice of a request: the engine request behind it and the text
// pipeline its tokens go through: detokenizer -> stop strings -> reasoning
// split (chat only).
class ChoiceRun {
 public:
  ChoiceRun(const ServedModel& m, std::string engine_id, std::shared_ptr<RequestStream> stream,
            const GenerationOptions& opt, bool chat, bool starts_in_reasoning, bool logprobs,
            int32_t n_top)
      : model_(m),
        engine_id_(std::move(engine_id)),
        stream_(std::move(stream)),
        detok_(*m.tokenizer, /*skip_special=*/true),
        stops_(opt.stop),
        splitter_(starts_in_reasoning),
        counter_(chat && starts_in_reasoning, m.think_start_id, m.think_end_id),
        chat_(chat),
        logprobs_(logprobs),
        n_top_(n_top),
        min_tokens_(opt.min_tokens) {}

  RequestStream& stream() { return *stream_; }
  const std::string& engine_id() const { return engine_id_; }
  bool done() const { return done_; }

  ChoiceDelta on_event(const EngineEvent& e);

  int64_t n_tokens() const { return n_tokens_; }
  // Whether a sampled (not forced) token came: the prompt was processed.
  bool sampled_any() const { return sampled_any_; }
  int64_t n_reasoning_tokens() const { return counter_.n_reasoning_tokens(); }
  FinishReason finish() const { return finish_; }
  const Status& error() const { return error_; }
  const std::string& reasoning() const { return reasoning_all_; }
  const std::string& content() const { return content_all_; }
  const std::vector<LogprobEntry>& logprobs() const { return all_logprobs_; }
  bool saw_reasoning() const { return splitter_.reasoning_closed() || !reasoning_all_.empty(); }
  std::chrono::steady_clock::time_point first_token() const { return first_token_; }
  double queue_seconds() const { return queue_seconds_; }
  std::chrono::steady_clock::time_point last_token() const { return last_token_; }
  // The output so far, as a checkpoint keeps it: every token (with its
  // logprobs when they were asked for) and which ones the engine forced.
  const std::vector<SampledToken>& output() const { return output_; }
  const std::vector<int32_t>& forced_at() const { return forced_at_; }

 private:
  LogprobEntry entry(const SampledToken& t) const;
  void route(const std::string& text, ChoiceDelta* d);
  void feed(const std::string& piece, ChoiceDelta* d);
  void close(ChoiceDelta* d);

  const ServedModel& model_;
  std::string engine_id_;
  std::shared_ptr<RequestStream> stream_;
  IncrementalDetokenizer detok_;
  StopStringMatcher stops_;
  ReasoningSplitter splitter_;
  ReasoningTokenCounter counter_;
  bool chat_;
  bool logprobs_;
  int32_t n_top_;
  int32_t min_tokens_;  // stop strings do not end the output before this many tokens
  bool done_ = false;
  bool stopped_ = false;
  FinishReason finish_ = FinishReason::kStop;
  Status error_;
  int64_t n_tokens_ = 0;
  std::string reasoning_all_, content_all_;
  std::vector<LogprobEntry> all_logprobs_;
  std::chrono::steady_clock::time_point first_token_{}, last_token_{};
  double queue_seconds_ = 0;
  bool sampled_any_ = false;
  std::vector<SampledToken> output_;
  std::vector<int32_t> forced_at_;
};

}  // namespace r1
