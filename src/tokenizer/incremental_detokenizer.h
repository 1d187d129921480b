// Turns a stream of token ids into text pieces that are always whole UTF-8
// sequences: bytes of a character split across tokens wait for the rest.
// `hold_back` lets a caller keep the last N bytes of decoded text unreleased
// (stop strings that may still be completing), released by flush().
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace r1 {

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object. skip_special drops special tokens.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);

  // Appends one token; returns the text that became safe to emit (possibly
  // empty). Never returns a broken UTF-8 sequence.
  std::string push(int32_t id);

  // End of stream: returns everything still pending; an incomplete trailing
  // sequence becomes U+FFFD, as decode() would do.
  std::string flush();

  // Holds back up to n bytes of complete text at the end of what push()
  // returns (always cut on a character boundary).
  void set_hold_back(size_t n_bytes) { hold_back_ = n_bytes; }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  size_t hold_back_ = 0;
  std::string pending_;  // bytes decoded but not yet released
};

}  // namespace r1
