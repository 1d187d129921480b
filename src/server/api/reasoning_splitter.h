// Splits an R1 completion's text into reasoning and answer, incrementally.
//
// The DeepSeek-R1 generation prompt ends inside "<think>\n", so the model
// writes its reasoning first, then "</think>", then the answer. Everything
// before the first "</think>" is reasoning, everything after it is content;
// the marker itself is in neither. Other rules:
//   - A "<think>" at the very start of the output (the model opening the
//     block itself, as with the original 2025-01-20 template) is dropped and
//     opens reasoning, whatever `starts_in_reasoning` says.
//   - With starts_in_reasoning = false and no leading "<think>", the whole
//     output is content.
//   - Output that never closes its reasoning stays reasoning: nothing is lost.
//   - After "</think>" nothing is interpreted: a second "<think>" or
//     "</think>" is content text.
//   - Content is passed on as the model wrote it, including the "\n\n" that
//     usually follows "</think>" (vLLM's deepseek_r1 parser does the same).
// A marker split across pieces is recognised: a tail that may still become
// one is held back (at most 7 bytes) until the next piece or flush().
#pragma once

#include <string>
#include <string_view>

namespace r1 {

struct ReasoningDelta {
  std::string reasoning;  // reasoning_content text, possibly empty
  std::string content;    // answer text, possibly empty; always after `reasoning`
  bool empty() const { return reasoning.empty() && content.empty(); }
};

class ReasoningSplitter {
 public:
  // starts_in_reasoning: the prompt ends inside an open <think> block.
  explicit ReasoningSplitter(bool starts_in_reasoning);

  // Appends a decoded piece (whole UTF-8 characters).
  ReasoningDelta push(std::string_view piece);
  // End of the stream: releases any held-back text into the current part.
  ReasoningDelta flush();

  // True while text would still go to reasoning (before "</think>").
  bool in_reasoning() const { return state_ != State::kContent; }
  // True once "</think>" was seen.
  bool reasoning_closed() const { return closed_; }

 private:
  enum class State {
    kStart,      // waiting to see whether the output opens with "<think>"
    kReasoning,  // inside <think>, watching for "</think>"
    kContent,    // everything from here on is content
  };

  void run(ReasoningDelta* out);

  bool starts_in_reasoning_;
  State state_;
  bool closed_ = false;
  std::string held_;  // text not yet assigned to a part
};

}  // namespace r1
