// Tokenizer::from_json on small hand-written tokenizer.json files: merge
// formats and order, ignore_merges, added-token matching, config handling,
// and the errors outside input must produce.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace r1 {
namespace {

using nlohmann::json;

constexpr const char* kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2 bytes_to_unicode, written out from its definition: printable bytes
// stand for themselves, the rest map to U+0100.. in byte order.
std::string byte_char(int b) {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(256);
    uint32_t next = 256;
    for (int i = 0; i < 256; ++i) {
      const bool keep = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
      t[i] = keep ? i : next++;
    }
    return t;
  }();
  const uint32_t cp = table[b];
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level BPE whose 256 byte tokens have id = byte value ("a" = 97,
// " " = "Ġ" = 32), plus `extra` tokens.
json tiny_tokenizer(const json& extra, const json& merges, bool ignore_merges = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  for (const auto& [k, v] : extra.items()) vocab[k] = v;
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", kQwenPattern}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"},
           {"add_prefix_space", false},
           {"trim_offsets", false},
           {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"ignore_merges", ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}},
  };
}

Result<Tokenizer> load(const json& tokenizer, const std::string& config = "") {
  return Tokenizer::from_json(tokenizer.dump(), config);
}

std::vector<int32_t> ids_of(const Tokenizer& tok, std::string_view text, bool add = false) {
  Result<std::vector<int32_t>> ids = tok.encode(text, add);
  EXPECT_TRUE(ids.ok()) << ids.status().to_string();
  return ids.ok() ? ids.value() : std::vector<int32_t>{};
}

using Ids = std::vector<int32_t>;

TEST(TokenizerJson, LowestRankMergesFirst) {
  const json extra = {{"ab", 256}, {"bc", 257}, {"abc", 258}};
  // (b, c) ranks before (a, b): "abc" -> a + bc, and (a, bc) is no merge.
  Result<Tokenizer> tok = load(tiny_tokenizer(extra, {"b c", "a b", "ab c"}));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(ids_of(*tok, "abc"), (Ids{'a', 257}));
  // Swapped ranks: a + b first, then ab + c.
  Result<Tokenizer> tok2 = load(tiny_tokenizer(extra, {"a b", "b c", "ab c"}));
  ASSERT_TRUE(tok2.ok());
  EXPECT_EQ(ids_of(*tok2, "abc"), (Ids{258}));
}

TEST(TokenizerJson, EqualRanksMergeLeftmostFirst) {
  Result<Tokenizer> tok = load(tiny_tokenizer({{"aa", 256}}, {"a a"}));
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(ids_of(*tok, "aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(ids_of(*tok, "aaaaa"), (Ids{256, 256, 'a'}));
}

TEST(TokenizerJson, LongPieceMergesLikeShortOnes) {
  // 3000 letters in one piece (past the cache limit): pairs merge first,
  // then pairs of pairs.
  Result<Tokenizer> tok = load(tiny_tokenizer({{"aa", 256}, {"aaaa", 257}}, {"a a", "aa aa"}));
  ASSERT_TRUE(tok.ok());
  const Ids ids = ids_of(*tok, std::string(3002, 'a'));
  ASSERT_EQ(ids.size(), 751u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 257), 750);
  EXPECT_EQ(ids.back(), 256);
}

TEST(TokenizerJson, MergesAsPairsOrStrings) {
  const json extra = {{"ab", 256},
                      {"\xC4\xA0"
                       "c",
                       257}};
  Result<Tokenizer> strings = load(tiny_tokenizer(extra, {"a b", "\xC4\xA0 c"}));
  Result<Tokenizer> pairs =
      load(tiny_tokenizer(extra, json::array({{"a", "b"}, {"\xC4\xA0", "c"}})));
  ASSERT_TRUE(strings.ok()) << strings.status().to_string();
  ASSERT_TRUE(pairs.ok()) << pairs.status().to_string();
  EXPECT_EQ(ids_of(*strings, "ab c"), (Ids{256, 257}));
  EXPECT_EQ(ids_of(*pairs, "ab c"), (Ids{256, 257}));
  EXPECT_EQ(strings->decode(Ids{256, 257}), "ab c");
}

TEST(TokenizerJson, IgnoreMergesEmitsWholeVocabPieces) {
  // "abc" is in the vocab but no merge leads to it.
  Result<Tokenizer> plain = load(tiny_tokenizer({{"abc", 256}}, json::array(), false));
  Result<Tokenizer> ignoring = load(tiny_tokenizer({{"abc", 256}}, json::array(), true));
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(ignoring.ok());
  EXPECT_EQ(ids_of(*plain, "abc"), (Ids{'a', 'b', 'c'}));
  EXPECT_EQ(ids_of(*ignoring, "abc"), (Ids{256}));
  EXPECT_EQ(ids_of(*ignoring, "abcc"), (Ids{'a', 'b', 'c', 'c'}));
}

TEST(TokenizerJson, AddedTokensLongestFirstAndStrip) {
  json t = tiny_tokenizer(json::object(), json::array());
  t["added_tokens"] = {
      {{"id", 300}, {"content", "<x>"}, {"special", true}},
      {{"id", 301}, {"content", "<x>>"}, {"special", false}},
      {{"id", 302}, {"content", "[R]"}, {"rstrip", true}},
      {{"id", 303}, {"content", "[L]"}, {"lstrip", true}},
  };
  Result<Tokenizer> tok = load(t);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(tok->n_tokens(), 304);
  EXPECT_EQ(ids_of(*tok, "a<x>>b<x>c"), (Ids{'a', 301, 'b', 300, 'c'}));
  EXPECT_EQ(ids_of(*tok, "<x<x>"), (Ids{'<', 'x', 300}));
  EXPECT_EQ(ids_of(*tok, "a [R]  b"), (Ids{'a', ' ', 302, 'b'}));
  EXPECT_EQ(ids_of(*tok, "a  [L] b"), (Ids{'a', 303, ' ', 'b'}));
  EXPECT_EQ(tok->decode(Ids{'a', 300, 301}, /*skip_special=*/true), "a<x>>");
  EXPECT_EQ(tok->token_to_id("<x>>"), 301);
  EXPECT_EQ(tok->token_to_id("\xC4\xA0"), 32);
}

TEST(TokenizerJson, ByteLevelWithGpt2Regex) {
  // GPT-2 style: no Split, ByteLevel runs its own regex and adds a prefix
  // space. "hi  there" -> " hi", " ", " there".
  json t = tiny_tokenizer(json::object(), json::array());
  t["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  Result<Tokenizer> tok = load(t);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(ids_of(*tok, "hi  there"), (Ids{' ', 'h', 'i', ' ', ' ', 't', 'h', 'e', 'r', 'e'}));
  EXPECT_EQ(ids_of(*tok, " x"), (Ids{' ', 'x'}));  // already starts with a space
}

TEST(TokenizerJson, ConfigBosAsStringOrObjectAndTemplate) {
  json t = tiny_tokenizer(json::object(), json::array());
  t["added_tokens"] = {{{"id", 300}, {"content", "<s>"}, {"special", true}},
                       {{"id", 301}, {"content", "</s>"}, {"special", true}}};
  const json as_string = {{"bos_token", "<s>"},
                          {"eos_token", "</s>"},
                          {"add_bos_token", true},
                          {"chat_template", "{{ x }}"}};
  Result<Tokenizer> a = load(t, as_string.dump());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->bos_id(), 300);
  EXPECT_EQ(a->eos_id(), 301);
  EXPECT_TRUE(a->add_bos_token());
  EXPECT_EQ(a->chat_template_source(), "{{ x }}");
  EXPECT_EQ(ids_of(*a, "a", true), (Ids{300, 'a'}));

  const json as_object = {{"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}},
                          {"eos_token", {{"content", "</s>"}}},
                          {"add_bos_token", false},
                          {"add_eos_token", true}};
  Result<Tokenizer> b = load(t, as_object.dump());
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->bos_id(), 300);
  EXPECT_FALSE(b->add_bos_token());
  EXPECT_EQ(ids_of(*b, "a", true), (Ids{'a', 301}));
  EXPECT_EQ(b->chat_template_source(), "");

  Result<Tokenizer> none = load(t, "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->bos_id(), std::nullopt);
  EXPECT_FALSE(none->add_bos_token());
  EXPECT_EQ(ids_of(*none, "a", true), (Ids{'a'}));
}

TEST(TokenizerJson, LoadFromDirectory) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("r1_tok_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "tokenizer.json") << tiny_tokenizer(json::object(), json::array()).dump(); }
  Result<Tokenizer> tok = Tokenizer::load(dir.string());
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ(ids_of(*tok, "ab"), (Ids{'a', 'b'}));
  std::filesystem::remove_all(dir);

  Result<Tokenizer> missing = Tokenizer::load(dir.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

struct BadCase {
  const char* what;
  std::function<void(json&)> edit;
  StatusCode code;
  const char* message_part;
};

TEST(TokenizerJson, ErrorsNameTheProblem) {
  const std::vector<BadCase> cases = {
      {"unknown normalizer",
       [](json& t) {
         t["normalizer"] = {{"type", "Lowercase"}};
       },
       StatusCode::kUnimplemented, "Lowercase"},
      {"unknown normalizer in a sequence",
       [](json& t) {
         t["normalizer"] = {{"type", "Sequence"},
                            {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKD"}}}}};
       },
       StatusCode::kUnimplemented, "NFKD"},
      {"unknown pre-tokenizer",
       [](json& t) {
         t["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       StatusCode::kUnimplemented, "Whitespace"},
      {"unknown split behaviour",
       [](json& t) { t["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithNext"; },
       StatusCode::kUnimplemented, "MergedWithNext"},
      {"no ByteLevel step", [](json& t) { t["pre_tokenizer"]["pretokenizers"].erase(1); },
       StatusCode::kUnimplemented, "ByteLevel"},
      {"regex that does not compile",
       [](json& t) { t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a"; },
       StatusCode::kInvalidArgument, "(a"},
      {"unknown model", [](json& t) { t["model"]["type"] = "Unigram"; }, StatusCode::kUnimplemented,
       "Unigram"},
      {"unknown decoder",
       [](json& t) {
         t["decoder"] = {{"type", "WordPiece"}};
       },
       StatusCode::kUnimplemented, "WordPiece"},
      {"byte fallback", [](json& t) { t["model"]["byte_fallback"] = true; },
       StatusCode::kUnimplemented, "byte_fallback"},
      {"merge of unknown tokens", [](json& t) { t["model"]["merges"] = {"a zz"}; },
       StatusCode::kInvalidArgument, "merge 0"},
      {"merge result not in vocab", [](json& t) { t["model"]["merges"] = {"b a"}; },
       StatusCode::kInvalidArgument, "not in the vocab"},
      {"merge with three parts", [](json& t) { t["model"]["merges"] = {"a b c"}; },
       StatusCode::kInvalidArgument, "merge 0"},
      {"vocab id not an integer", [](json& t) { t["model"]["vocab"]["a"] = "x"; },
       StatusCode::kInvalidArgument, "vocab entry"},
      {"vocab missing", [](json& t) { t["model"].erase("vocab"); }, StatusCode::kInvalidArgument,
       "vocab"},
      // An id table of 2^31 entries would take gigabytes: ids stop at 2^24,
      // the most embedding rows config.json may give.
      {"vocab id past 2^24", [](json& t) { t["model"]["vocab"]["a"] = 1 << 24; },
       StatusCode::kInvalidArgument, "vocab entry"},
      {"added token id near 2^31",
       [](json& t) {
         t["added_tokens"] = {{{"id", 2147483600}, {"content", "<w>"}}};
       },
       StatusCode::kInvalidArgument, "id"},
      {"added token without content",
       [](json& t) {
         t["added_tokens"] = {{{"id", 300}}};
       },
       StatusCode::kInvalidArgument, "content"},
      {"added token single_word",
       [](json& t) {
         t["added_tokens"] = {{{"id", 300}, {"content", "<w>"}, {"single_word", true}}};
       },
       StatusCode::kUnimplemented, "single_word"},
      {"post-processor kind",
       [](json& t) {
         t["post_processor"] = {{"type", "BertProcessing"}};
       },
       StatusCode::kUnimplemented, "BertProcessing"},
      {"wrong value type", [](json& t) { t["model"]["ignore_merges"] = "yes"; },
       StatusCode::kInvalidArgument, ""},
  };
  for (const BadCase& c : cases) {
    json t = tiny_tokenizer({{"ab", 256}}, {"a b"});
    c.edit(t);
    Result<Tokenizer> tok = load(t);
    ASSERT_FALSE(tok.ok()) << c.what << " was accepted";
    EXPECT_EQ(tok.status().code(), c.code) << c.what << ": " << tok.status().to_string();
    EXPECT_NE(tok.status().message().find(c.message_part), std::string::npos)
        << c.what << ": " << tok.status().to_string();
  }
}

TEST(TokenizerJson, MalformedFilesAreInvalidArgument) {
  for (const std::string& text :
       {std::string(""), std::string("{"), std::string("[1, 2]"), std::string("{\"model\": 3}"),
        std::string("null"), std::string("{\"model\": {\"vocab\": {\"a\": 0}}}"),
        std::string("{\"added_tokens\": [], \"model\": {\"type\": "
                    "\"BPE\", \"vocab\": {}, \"merges\": []}}")}) {
    Result<Tokenizer> tok = Tokenizer::from_json(text, "");
    ASSERT_FALSE(tok.ok()) << text;
    EXPECT_TRUE(tok.status().code() == StatusCode::kInvalidArgument ||
                tok.status().code() == StatusCode::kUnimplemented)
        << text << ": " << tok.status().to_string();
  }
  const json good = tiny_tokenizer(json::object(), json::array());
  Result<Tokenizer> bad_config = Tokenizer::from_json(good.dump(), "{not json");
  ASSERT_FALSE(bad_config.ok());
  EXPECT_EQ(bad_config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_config.status().message().find("tokenizer_config.json"), std::string::npos);
  Result<Tokenizer> unknown_bos =
      Tokenizer::from_json(good.dump(), R"({"bos_token": "<nope>", "add_bos_token": true})");
  ASSERT_FALSE(unknown_bos.ok());
  EXPECT_NE(unknown_bos.status().message().find("<nope>"), std::string::npos);
}

}  // namespace
}  // namespace r1
