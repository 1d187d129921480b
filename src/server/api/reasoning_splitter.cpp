#include "server/api/reasoning_splitter.h"

#include <algorithm>

namespace r1 {

namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

// Length of the longest tail of `text` that is a proper prefix of `marker`.
size_t partial_marker_tail(std::string_view text, std::string_view marker) {
  size_t max_len = std::min(marker.size() - 1, text.size());
  for (size_t len = max_len; len > 0; --len) {
    if (text.substr(text.size() - len) == marker.substr(0, len)) return len;
  }
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_in_reasoning)
    : starts_in_reasoning_(starts_in_reasoning), state_(State::kStart) {}

ReasoningDelta ReasoningSplitter::push(std::string_view piece) {
  held_.append(piece);
  ReasoningDelta out;
  run(&out);
  return out;
}

void ReasoningSplitter::run(ReasoningDelta* out) {
  if (state_ == State::kStart) {
    std::string_view text = held_;
    if (text.substr(0, kThinkOpen.size()) == kThinkOpen) {
      held_.erase(0, kThinkOpen.size());
      state_ = State::kReasoning;
    } else if (kThinkOpen.substr(0, text.size()) == text) {
      return;  // still a possible "<think>" (or nothing yet)
    } else {
      state_ = starts_in_reasoning_ ? State::kReasoning : State::kContent;
    }
  }
  if (state_ == State::kReasoning) {
    size_t pos = held_.find(kThinkClose);
    if (pos != std::string::npos) {
      out->reasoning.append(held_, 0, pos);
      held_.erase(0, pos + kThinkClose.size());
      state_ = State::kContent;
      closed_ = true;
    } else {
      size_t hold = partial_marker_tail(held_, kThinkClose);
      out->reasoning.append(held_, 0, held_.size() - hold);
      held_.erase(0, held_.size() - hold);
      return;
    }
  }
  // kContent
  out->content.append(held_);
  held_.clear();
}

ReasoningDelta ReasoningSplitter::flush() {
  ReasoningDelta out;
  if (state_ == State::kStart) {
    // A proper prefix of "<think>" (or nothing) and the stream ended.
    state_ = starts_in_reasoning_ ? State::kReasoning : State::kContent;
  }
  if (state_ == State::kReasoning) {
    out.reasoning = std::move(held_);
  } else {
    out.content = std::move(held_);
  }
  held_.clear();
  return out;
}

}  // namespace r1
