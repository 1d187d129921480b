#include "tokenizer/detail/byte_level.h"

#include "tokenizer/detail/utf8.h"

namespace r1::detail {

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_.fill(-1);
  uint32_t next_extra = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    cp_[b] = printable ? static_cast<uint32_t>(b) : next_extra++;
    append_utf8(cp_[b], utf8_[b]);
    byte_of_[cp_[b]] = static_cast<int16_t>(b);
  }
}

std::optional<uint8_t> ByteLevelAlphabet::byte_of(uint32_t cp) const {
  if (cp >= byte_of_.size() || byte_of_[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(byte_of_[cp]);
}

void ByteLevelAlphabet::append_encoded(std::string_view raw, std::string& out) const {
  for (const char c : raw) out += utf8_[static_cast<uint8_t>(c)];
}

std::string ByteLevelAlphabet::decode_token(std::string_view token) const {
  std::string bytes;
  bytes.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const std::optional<uint8_t> b = byte_of(utf8_next(token, i));
    if (!b) return std::string(token);
    bytes.push_back(static_cast<char>(*b));
  }
  return bytes;
}

}  // namespace r1::detail
