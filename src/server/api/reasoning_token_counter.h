// Which generated tokens count as reasoning, for
// usage.completion_tokens_details.reasoning_tokens. Token-level twin of
// ReasoningSplitter: with the prompt inside <think>, every token up to and
// including the first `</think>` id is reasoning; otherwise a `<think>` id as
// the very first token opens reasoning (and counts), and without it nothing is
// reasoning.
#pragma once

#include <cstdint>
#include <optional>

namespace r1 {

class ReasoningTokenCounter {
 public:
  // Ids from the tokenizer (151648 / 151649 for the Qwen distills); an absent
  // id never matches, so with no think_end_id all reasoning stays open.
  ReasoningTokenCounter(bool starts_in_reasoning, std::optional<int32_t> think_start_id,
                        std::optional<int32_t> think_end_id);

  // Feeds the next generated token; returns whether it is a reasoning token.
  bool push(int32_t id);

  int64_t n_reasoning_tokens() const { return n_reasoning_; }
  bool in_reasoning() const { return in_reasoning_; }

 private:
  std::optional<int32_t> think_start_id_;
  std::optional<int32_t> think_end_id_;
  bool in_reasoning_;
  bool first_ = true;
  int64_t n_reasoning_ = 0;
};

}  // namespace r1
