// UTF-8 helpers of the tokenizer: validation (encode rejects invalid input),
// lossy conversion (decode replaces invalid bytes with U+FFFD the way Rust's
// String::from_utf8_lossy does, which is what Hugging Face decode produces)
// and the incomplete-tail length the incremental detokenizer waits on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace r1::detail {

// Length of the well-formed UTF-8 sequence (Unicode Table 3-7) starting at
// s[i], or 0 when the bytes there are not one (including a sequence cut off
// by the end of s).
size_t utf8_sequence_length(std::string_view s, size_t i);

// Offset of the first byte that is not part of a well-formed sequence, or
// npos when all of s is valid UTF-8.
size_t utf8_first_invalid(std::string_view s);

// s with every maximal ill-formed subpart replaced by U+FFFD (EF BF BD).
std::string utf8_lossy(std::string_view s);
void append_utf8_lossy(std::string_view s, std::string& out);

// Number of bytes at the end of s that form the start of a well-formed
// sequence whose remaining bytes have not arrived yet (0..3). Those bytes
// must wait: the next byte decides whether they become a character or
// U+FFFD.
size_t utf8_incomplete_tail(std::string_view s);

// Decodes the code point at s[i] of a valid UTF-8 string; advances i.
uint32_t utf8_next(std::string_view s, size_t& i);
void append_utf8(uint32_t cp, std::string& out);

// True for code points with the Unicode White_Space property.
bool is_unicode_white_space(uint32_t cp);

}  // namespace r1::detail
