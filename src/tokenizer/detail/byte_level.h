// GPT-2's bytes_to_unicode: the byte-level alphabet every token of a
// byte-level BPE vocabulary is written in. Bytes 0x21-0x7E, 0xA1-0xAC and
// 0xAE-0xFF stand for themselves; the other 68 bytes, in increasing order,
// map to U+0100, U+0101, ... (space -> U+0120 'Ġ', LF -> U+010A 'Ċ').
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace r1::detail {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();

  // The code point byte b is written as, and the same as UTF-8.
  uint32_t code_point(uint8_t b) const { return cp_[b]; }
  const std::string& utf8(uint8_t b) const { return utf8_[b]; }

  // The byte a code point of the alphabet stands for; nullopt for any other
  // code point.
  std::optional<uint8_t> byte_of(uint32_t cp) const;

  // raw bytes -> the alphabet's characters, UTF-8 encoded.
  void append_encoded(std::string_view raw, std::string& out) const;

  // Hugging Face's ByteLevel decoder on one token: when every character of
  // `token` (valid UTF-8) belongs to the alphabet, the bytes they stand for;
  // otherwise the token's own UTF-8 bytes (added tokens such as
  // "<｜User｜>").
  std::string decode_token(std::string_view token) const;

 private:
  ByteLevelAlphabet();
  std::array<uint32_t, 256> cp_{};
  std::array<std::string, 256> utf8_;
  std::array<int16_t, 0x144> byte_of_{};  // every alphabet code point is < 0x144
};

}  // namespace r1::detail
