#include "server/api/choice_run.h"

namespace r1 {

ChoiceDelta ChoiceRun::on_event(const EngineEvent& e) {
  ChoiceDelta d;
  if (done_) return d;
  if (e.token) {
    // Time to first token means the first sampled one (a reasoning budget
    // of zero forces "</think>" before it).
    if (n_tokens_ == 0 || (!e.forced && !sampled_any_)) {
      first_token_ = e.time;
      queue_seconds_ = e.queue_seconds;
    }
    if (!e.forced) sampled_any_ = true;
    last_token_ = e.time;
    if (e.forced) forced_at_.push_back(static_cast<int32_t>(n_tokens_));
    output_.push_back(logprobs_ ? *e.token : SampledToken{e.token->id, 0.0f, {}});
    ++n_tokens_;
    if (chat_) counter_.push(e.token->id);
    if (logprobs_ && !e.forced) d.logprobs.push_back(entry(*e.token));
    feed(detok_.push(e.token->id), &d);
  }
  if (e.finished && !done_) {
    if (e.end_reason == EndReason::kError) {
      error_ = e.error.ok() ? internal_error("generation failed") : e.error;
    } else {
      feed(detok_.flush(), &d);
      if (!stopped_) route(stops_.flush(), &d);
      finish_ = e.end_reason == EndReason::kLength ? FinishReason::kLength : FinishReason::kStop;
    }
    close(&d);
  }
  reasoning_all_ += d.reasoning;
  content_all_ += d.content;
  all_logprobs_.insert(all_logprobs_.end(), d.logprobs.begin(), d.logprobs.end());
  return d;
}

LogprobEntry ChoiceRun::entry(const SampledToken& t) const {
  LogprobEntry e{model_.tokenizer->token_bytes(t.id), t.logprob, {}};
  for (const auto& alt : t.top) {
    e.top.push_back({model_.tokenizer->token_bytes(alt.id), alt.logprob});
  }
  return e;
}

void ChoiceRun::route(const std::string& text, ChoiceDelta* d) {
  if (text.empty()) return;
  if (!chat_) {
    d->content += text;
    return;
  }
  ReasoningDelta r = splitter_.push(text);
  d->reasoning += r.reasoning;
  d->content += r.content;
}

void ChoiceRun::feed(const std::string& piece, ChoiceDelta* d) {
  if (stopped_ || piece.empty()) return;
  if (n_tokens_ < min_tokens_) {
    // min_tokens: stop strings are not looked for yet (as vLLM).
    route(piece, d);
    return;
  }
  StopMatch m = stops_.push(piece);
  route(m.text, d);
  if (m.stopped) {
    stopped_ = true;
    finish_ = FinishReason::kStop;
    model_.engine->cancel(engine_id_);
    close(d);
  }
}

void ChoiceRun::close(ChoiceDelta* d) {
  if (chat_) {
    ReasoningDelta r = splitter_.flush();
    d->reasoning += r.reasoning;
    d->content += r.content;
  }
  done_ = true;
  d->finished = true;
}

}  // namespace r1
