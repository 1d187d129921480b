// IncrementalDetokenizer: every piece is valid UTF-8, pieces + flush equal
// decode() of the whole stream, hold-back keeps the tail, flush finishes a
// truncated character with U+FFFD.
#include "tokenizer/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include <array>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1_tokenizers.h"
#include "tokenizer/detail/utf8.h"

namespace r1 {
namespace {

using Ids = std::vector<int32_t>;

bool valid_utf8(std::string_view s) {
  return detail::utf8_first_invalid(s) == std::string_view::npos;
}

// Id of the token made of the single byte b.
int32_t byte_token(const Tokenizer& tok, uint8_t b) {
  static std::array<int32_t, 256> table = [&tok] {
    std::array<int32_t, 256> t;
    t.fill(-1);
    for (int32_t id = 0; id < tok.n_tokens(); ++id) {
      const std::string& bytes = tok.token_bytes(id);
      if (bytes.size() == 1 && t[static_cast<uint8_t>(bytes[0])] < 0) {
        t[static_cast<uint8_t>(bytes[0])] = id;
      }
    }
    return t;
  }();
  return table[b];
}

// Feeds ids one by one; checks each piece; returns the pieces.
std::vector<std::string> stream(const Tokenizer& tok, const Ids& ids, size_t hold_back = 0,
                                bool skip_special = false) {
  IncrementalDetokenizer detok(tok, skip_special);
  detok.set_hold_back(hold_back);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) {
    pieces.push_back(detok.push(id));
    EXPECT_TRUE(valid_utf8(pieces.back())) << "broken UTF-8 after id " << id;
  }
  pieces.push_back(detok.flush());
  EXPECT_TRUE(valid_utf8(pieces.back()));
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string s;
  for (const std::string& p : pieces) s += p;
  return s;
}

void check_emoji_split_across_byte_tokens() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  // "a😀b" with the emoji as its four single-byte tokens.
  const Ids ids = {byte_token(*tok, 'a'),  byte_token(*tok, 0xF0), byte_token(*tok, 0x9F),
                   byte_token(*tok, 0x98), byte_token(*tok, 0x80), byte_token(*tok, 'b')};
  for (const int32_t id : ids) ASSERT_GE(id, 0);
  const std::vector<std::string> pieces = stream(*tok, ids);
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "", "", "", "\xF0\x9F\x98\x80", "b", ""}));
  EXPECT_EQ(join(pieces), tok->decode(ids));
}

void check_concatenation_equals_decode_on_the_corpus() {
  const std::string corpus =
      testing::read_text_file(testing::source_dir() + "/tests/tokenizer/corpus.txt");
  for (const bool llama : {false, true}) {
    R1_REQUIRE_TOKENIZER(tok, testing::r1_tokenizer(llama));
    std::istringstream in(corpus);
    std::string raw;
    int n_lines = 0;
    while (std::getline(in, raw)) {
      if (raw.empty() || raw[0] == '#') continue;
      const std::string text = nlohmann::json::parse(raw).get<std::string>();
      Result<Ids> ids = tok->encode(text);
      ASSERT_TRUE(ids.ok());
      const std::string decoded = tok->decode(ids.value());
      for (const size_t hold : {size_t{0}, size_t{1}, size_t{5}}) {
        EXPECT_EQ(join(stream(*tok, ids.value(), hold)), decoded) << raw << " hold " << hold;
      }
      ++n_lines;
    }
    EXPECT_GT(n_lines, 300);
  }
}

void check_hold_back_keeps_the_tail() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  const Ids ids = {9707, 1879};  // "Hello", " world"
  IncrementalDetokenizer detok(*tok);
  detok.set_hold_back(3);
  EXPECT_EQ(detok.push(9707), "He");
  EXPECT_EQ(detok.push(1879), "llo wo");
  EXPECT_EQ(detok.flush(), "rld");

  // The cut moves back to a character boundary: at least 1 byte held means
  // the whole "é" (2 bytes) waits.
  Result<Ids> ae = tok->encode("a\xC3\xA9");
  ASSERT_TRUE(ae.ok());
  IncrementalDetokenizer detok2(*tok);
  detok2.set_hold_back(1);
  std::string released;
  for (const int32_t id : ae.value()) released += detok2.push(id);
  EXPECT_EQ(released, "a");
  EXPECT_EQ(detok2.flush(), "\xC3\xA9");
}

void check_hold_back_is_respected_after_every_token() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  const std::string text = "Stop at </stop> maybe \xE6\x88\x91\xE7\x88\xB1 \xF0\x9F\x98\x80 end";
  Result<Ids> ids = tok->encode(text);
  ASSERT_TRUE(ids.ok());
  constexpr size_t kHold = 6;
  IncrementalDetokenizer detok(*tok);
  detok.set_hold_back(kHold);
  std::string released;
  Ids prefix;
  for (const int32_t id : ids.value()) {
    released += detok.push(id);
    prefix.push_back(id);
    const std::string so_far = tok->decode(prefix);
    // Released text is a prefix of what decode gives, at least kHold bytes short.
    EXPECT_EQ(so_far.compare(0, released.size(), released), 0);
    EXPECT_LE(released.size() + kHold, std::max(so_far.size(), kHold));
  }
  EXPECT_EQ(released + detok.flush(), text);
}

void check_flush_of_truncated_sequence_is_replacement() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  const Ids ids = {byte_token(*tok, 'x'), byte_token(*tok, 0xF0), byte_token(*tok, 0x9F)};
  IncrementalDetokenizer detok(*tok);
  EXPECT_EQ(detok.push(ids[0]), "x");
  EXPECT_EQ(detok.push(ids[1]), "");
  EXPECT_EQ(detok.push(ids[2]), "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(tok->decode(ids), "x\xEF\xBF\xBD");
  EXPECT_EQ(detok.flush(), "");  // nothing left
}

void check_invalid_bytes_are_replaced_at_once() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  // A lone continuation byte can never become valid: released as U+FFFD.
  IncrementalDetokenizer detok(*tok);
  EXPECT_EQ(detok.push(byte_token(*tok, 0x9F)), "\xEF\xBF\xBD");
  // A lead byte followed by ASCII: the lead byte becomes U+FFFD.
  EXPECT_EQ(detok.push(byte_token(*tok, 0xE6)), "");
  EXPECT_EQ(detok.push(byte_token(*tok, 'A')),
            "\xEF\xBF\xBD"
            "A");
}

void check_skip_special_drops_special_tokens_only() {
  R1_REQUIRE_TOKENIZER(tok, testing::r1_qwen());
  const Ids ids = {151646, 151644, 13048, 151645, 151648, 198, 151649, 151643};
  const std::vector<std::string> pieces = stream(*tok, ids, 0, /*skip_special=*/true);
  EXPECT_EQ(join(pieces), tok->decode(ids, /*skip_special=*/true));
  EXPECT_EQ(pieces.front(), "");  // BOS dropped
  const std::vector<std::string> all = stream(*tok, ids, 0, false);
  EXPECT_EQ(join(all), tok->decode(ids, false));
}

// Grouped: ctest runs each test in its own process and each process builds
// the R1 tokenizers (about a second each).
TEST(IncrementalDetokenizer, StreamsEqualDecode) {
  {
    SCOPED_TRACE("emoji_split_across_byte_tokens");
    check_emoji_split_across_byte_tokens();
  }
  {
    SCOPED_TRACE("concatenation_equals_decode_on_the_corpus");
    check_concatenation_equals_decode_on_the_corpus();
  }
  {
    SCOPED_TRACE("skip_special_drops_special_tokens_only");
    check_skip_special_drops_special_tokens_only();
  }
}

TEST(IncrementalDetokenizer, HoldBackAndFlush) {
  {
    SCOPED_TRACE("hold_back_keeps_the_tail");
    check_hold_back_keeps_the_tail();
  }
  {
    SCOPED_TRACE("hold_back_is_respected_after_every_token");
    check_hold_back_is_respected_after_every_token();
  }
  {
    SCOPED_TRACE("flush_of_truncated_sequence_is_replacement");
    check_flush_of_truncated_sequence_is_replacement();
  }
  {
    SCOPED_TRACE("invalid_bytes_are_replaced_at_once");
    check_invalid_bytes_are_replaced_at_once();
  }
}

}  // namespace
}  // namespace r1
