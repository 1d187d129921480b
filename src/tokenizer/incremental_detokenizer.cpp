#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/detail/utf8.h"

namespace r1 {

// pending_ holds raw bytes not yet released: complete text kept back by
// hold_back_ followed by the start of a character whose remaining bytes have
// not arrived. Releasing a prefix that ends where such a start begins gives
// the same text decode() gives for the whole stream, because lossy UTF-8
// decoding restarts at every character boundary.

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.token_bytes(id);

  const size_t cut = pending_.size() - detail::utf8_incomplete_tail(pending_);
  std::string text = detail::utf8_lossy(std::string_view(pending_).substr(0, cut));
  // Keep at least hold_back_ bytes of the text, starting on a character
  // boundary (text is valid UTF-8: skip back over continuation bytes).
  size_t release = text.size() > hold_back_ ? text.size() - hold_back_ : 0;
  while (release > 0 && (static_cast<uint8_t>(text[release]) & 0xC0) == 0x80) --release;

  pending_ = text.substr(release) + pending_.substr(cut);
  text.resize(release);
  return text;
}

std::string IncrementalDetokenizer::flush() {
  std::string text = detail::utf8_lossy(pending_);
  pending_.clear();
  return text;
}

}  // namespace r1
