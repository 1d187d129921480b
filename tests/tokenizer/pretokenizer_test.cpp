// The pre-tokenizer split (PCRE2) on hand-derived cases of the Qwen2 and
// Llama-3 patterns (model-facts.md §2.2), including where Oniguruma, which
// Hugging Face uses, and PCRE2's own \s differ.
#include "tokenizer/detail/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace r1::detail {
namespace {

constexpr const char* kQwen =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> pieces(const char* pattern, std::string_view text) {
  Result<SplitRegex> re = SplitRegex::compile(pattern, false);
  EXPECT_TRUE(re.ok()) << re.status().to_string();
  std::vector<std::string_view> views;
  EXPECT_TRUE(re->split(text, views).ok());
  return {views.begin(), views.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, QwenAlternatives) {
  EXPECT_EQ(pieces(kQwen, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces(kQwen, "   leading spaces"), (Pieces{"  ", " leading", " spaces"}));
  EXPECT_EQ(pieces(kQwen, "12345"), (Pieces{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(pieces(kQwen, "x = 3.1;\r\n\ty"),
            (Pieces{"x", " =", " ", "3", ".", "1", ";\r\n", "\ty"}));
  EXPECT_EQ(pieces(kQwen, " 'll don't"), (Pieces{" '", "ll", " don", "'t"}));
  EXPECT_EQ(pieces(kQwen, "DON'T You'Ll"), (Pieces{"DON", "'T", " You", "'Ll"}));
  EXPECT_EQ(pieces(kQwen, "a\n\n  b  "), (Pieces{"a", "\n\n", " ", " b", "  "}));
  EXPECT_EQ(pieces(kQwen, "$100"), (Pieces{"$", "1", "0", "0"}));
  EXPECT_EQ(pieces(kQwen, "$abc"), (Pieces{"$abc"}));
  EXPECT_EQ(pieces(kQwen, "\xE6\x88\x91\xE7\x88\xB1"), (Pieces{"\xE6\x88\x91\xE7\x88\xB1"}));
}

TEST(PreTokenizer, LlamaGroupsDigitsByThree) {
  EXPECT_EQ(pieces(kLlama, "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(pieces(kLlama, "x 12 3456"), (Pieces{"x", " ", "12", " ", "345", "6"}));
}

TEST(PreTokenizer, ContractionsAreCaseInsensitiveLikeOniguruma) {
  // U+017F LATIN SMALL LETTER LONG S case-folds to "s": Oniguruma's (?i:'s)
  // matches it, so "'ſ" is a contraction piece.
  EXPECT_EQ(pieces(kQwen, "Let'\xC5\xBFgo"), (Pieces{"Let", "'\xC5\xBF", "go"}));
}

TEST(PreTokenizer, WhiteSpaceMeansTheUnicodeProperty) {
  // U+0085 (NEL) is White_Space: "a \u0085b" gives the space run before it
  // up as in any whitespace run.
  EXPECT_EQ(pieces(kQwen,
                   "a \xC2\x85"
                   "b"),
            (Pieces{"a", " ",
                    "\xC2\x85"
                    "b"}));
  // U+FEFF is not White_Space: it is punctuation-like.
  EXPECT_EQ(pieces(kQwen, "!\xEF\xBB\xBF!"), (Pieces{"!\xEF\xBB\xBF!"}));
  // U+180E is not White_Space since Unicode 6.3, though PCRE2's own \s
  // still matches it; the rewrite keeps Oniguruma's meaning.
  EXPECT_EQ(pieces(kQwen, "!\xE1\xA0\x8E!"), (Pieces{"!\xE1\xA0\x8E!"}));
  EXPECT_EQ(pieces(kQwen, "x\xE1\xA0\x8E \xE1\xA0\x8Ey"),
            (Pieces{"x", "\xE1\xA0\x8E", " \xE1\xA0\x8E", "y"}));
}

TEST(PreTokenizer, RewriteLeavesEscapesAndQuotesAlone) {
  EXPECT_EQ(rewrite_for_pcre2(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}])");
  EXPECT_EQ(rewrite_for_pcre2(R"(\\s\Q\s\E\s)"), R"(\\s\Q\s\E\p{White_Space})");
}

TEST(PreTokenizer, LiteralPatternAndGaps) {
  Result<SplitRegex> re = SplitRegex::compile("a.", true);
  ASSERT_TRUE(re.ok());
  std::vector<std::string_view> out;
  ASSERT_TRUE(re->split("xa.ya.", out).ok());
  EXPECT_EQ(Pieces(out.begin(), out.end()), (Pieces{"x", "a.", "y", "a."}));
  // A pattern that can match empty splits nothing there.
  Result<SplitRegex> opt = SplitRegex::compile("b*", false);
  ASSERT_TRUE(opt.ok());
  out.clear();
  ASSERT_TRUE(opt->split("abba", out).ok());
  EXPECT_EQ(Pieces(out.begin(), out.end()), (Pieces{"a", "bb", "a"}));
}

TEST(PreTokenizer, LongInputsDoNotExhaustTheMatcher) {
  // One megabyte runs of each class: whitespace (lookahead backtracking),
  // letters, digits, punctuation, newlines.
  for (const std::string& unit :
       {std::string(" "), std::string("a"), std::string("7"), std::string("!"), std::string("\n"),
        std::string(" \t"), std::string("\xE6\x88\x91")}) {
    std::string text;
    while (text.size() < (1 << 20)) text += unit;
    text += "x";
    std::vector<std::string_view> out;
    const Status st = SplitRegex::compile(kQwen, false)->split(text, out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    size_t total = 0;
    for (std::string_view p : out) total += p.size();
    EXPECT_EQ(total, text.size());
  }
}

}  // namespace
}  // namespace r1::detail
