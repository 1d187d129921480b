// Stop strings over streamed text. Text pieces arrive as the detokenizer
// releases them (whole UTF-8 characters); a stop string may span several
// pieces, so the longest tail that could still become a stop string is held
// back until the next piece decides it. Like OpenAI and vLLM, the output ends
// right before the stop string, which itself is never emitted.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace r1 {

struct StopMatch {
  std::string text;       // safe to emit now
  bool stopped = false;   // a stop string matched; `text` ends right before it
  size_t stop_index = 0;  // which of the constructor's strings matched (when stopped)
};

class StopStringMatcher {
 public:
  // Empty strings in `stops` never match. With no (non-empty) stops, push()
  // returns its input unchanged and holds nothing.
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Appends a piece. When a stop string completes, returns the text before it
  // and stops: later calls return nothing. The stop that completes first in
  // the text wins (at the same end, the longer one), whatever the pieces.
  // Otherwise returns all but the held-back tail.
  StopMatch push(std::string_view piece);

  // End of the stream without a stop: returns the held-back tail. Empty after
  // a match.
  std::string flush();

  bool stopped() const { return stopped_; }
  // Bytes currently held back (at most the longest stop string minus one).
  size_t n_held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace r1
