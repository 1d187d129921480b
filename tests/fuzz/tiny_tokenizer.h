// A tiny byte-level BPE tokenizer in the R1-Distill shape, built in memory
// for fuzz targets that need a real Tokenizer behind them: the 256 byte
// tokens (id = byte value, GPT-2 byte alphabet), a few merges, Qwen2's split
// pattern, and DeepSeek's added tokens from id 300 on, with
// tokenizer_config.json carrying BOS and the DeepSeek-R1 chat template.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace r1::fuzz {

inline constexpr const char* kQwenSplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

inline constexpr const char* kBos = "<｜begin▁of▁sentence｜>";

// GPT-2 bytes_to_unicode: printable bytes stand for themselves, the rest map
// to U+0100.. in byte order.
inline std::string byte_char(int b) {
  uint32_t next = 256, cp = 0;
  for (int i = 0; i <= b; ++i) {
    const bool keep = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
    cp = keep ? static_cast<uint32_t>(i) : next++;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// {tokenizer.json, tokenizer_config.json} texts. Without `nfc` the
// normalizer is null, so decode(encode(text)) gives back any valid UTF-8.
inline std::pair<std::string, std::string> tiny_tokenizer_files(bool nfc = true) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"Ġ", "a"}, {"e", "r"}, {"o", "n"}};
  json merge_list = json::array();
  int32_t next_id = 256;
  for (const auto& [a, b] : merges) {
    merge_list.push_back(a + " " + b);
    vocab[a + b] = next_id++;
  }
  const std::vector<std::pair<std::string, bool>> added = {
      {kBos, true},
      {"<｜end▁of▁sentence｜>", true},
      {"<｜User｜>", false},
      {"<｜Assistant｜>", false},
      {"<think>", false},
      {"</think>", false},
      {"<｜tool▁calls▁begin｜>", false},
      {"<｜tool▁calls▁end｜>", false},
      {"<｜tool▁call▁begin｜>", false},
      {"<｜tool▁call▁end｜>", false},
      {"<｜tool▁outputs▁begin｜>", false},
      {"<｜tool▁outputs▁end｜>", false},
      {"<｜tool▁output▁begin｜>", false},
      {"<｜tool▁output▁end｜>", false},
      {"<｜tool▁sep｜>", false},
  };
  json added_tokens = json::array();
  int32_t id = 300;
  for (const auto& [content, special] : added) {
    added_tokens.push_back({{"id", id++},
                            {"content", content},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", special}});
  }
  const json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", added_tokens},
      {"normalizer", nfc ? json{{"type", "NFC"}} : json()},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", kQwenSplitPattern}}},
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
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merge_list}}},
  };
  const json config = {{"add_bos_token", true},
                       {"add_eos_token", false},
                       {"bos_token", kBos},
                       {"eos_token", "<｜end▁of▁sentence｜>"},
                       {"chat_template", std::string(deepseek_r1_template_source())}};
  return {tokenizer.dump(), config.dump()};
}

}  // namespace r1::fuzz
