// UTF-8 helpers: validation and the lossy conversion decode() uses, which
// must replace each maximal ill-formed subpart with one U+FFFD (Unicode §3.9,
// what Rust's String::from_utf8_lossy does for Hugging Face decode).
#include "tokenizer/detail/utf8.h"

#include <gtest/gtest.h>

namespace r1::detail {
namespace {

constexpr const char* kFffd = "\xEF\xBF\xBD";

TEST(Utf8, Validation) {
  EXPECT_EQ(utf8_first_invalid("plain ascii"), std::string_view::npos);
  EXPECT_EQ(utf8_first_invalid("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(utf8_first_invalid("ab\xFF"), 2u);
  EXPECT_EQ(utf8_first_invalid("\xC0\x80"), 0u);          // overlong
  EXPECT_EQ(utf8_first_invalid("x\xE0\x80\x80"), 1u);     // overlong 3-byte
  EXPECT_EQ(utf8_first_invalid("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8_first_invalid("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8_first_invalid("ok\xE2\x82"), 2u);        // truncated
  EXPECT_EQ(utf8_first_invalid(std::string_view("\0", 1)), std::string_view::npos);
}

TEST(Utf8, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("abc"), "abc");
  EXPECT_EQ(utf8_lossy("\xE2\x82"), kFffd);  // one subpart
  EXPECT_EQ(utf8_lossy("\xE2\x82"
                       "A"),
            std::string(kFffd) + "A");
  EXPECT_EQ(utf8_lossy("\xF0\x80"), std::string(kFffd) + kFffd);  // 80 cannot follow F0
  EXPECT_EQ(utf8_lossy("\x80\x80"), std::string(kFffd) + kFffd);
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);
  EXPECT_EQ(utf8_lossy("a\xFF"
                       "b\xC3\xA9"),
            std::string("a") + kFffd + "b\xC3\xA9");
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x80"), 0u);  // already invalid: nothing to wait for
  EXPECT_EQ(utf8_incomplete_tail("\xC3"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\xE2\x82"), 2u);
}

}  // namespace
}  // namespace r1::detail
