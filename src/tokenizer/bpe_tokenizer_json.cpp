#include "tokenizer/bpe_tokenizer_json.h"

#include <utility>

namespace r1 {

namespace {

using nlohmann::json;

// The split regexes exactly as the models' tokenizer.json files store them
// (model-facts.md §2.2); llama.cpp uses the same ones for the GGUF names.
constexpr std::string_view kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json split_json(std::string_view regex) {
  return json{{"type", "Split"},
              {"pattern", {{"Regex", std::string(regex)}}},
              {"behavior", "Isolated"},
              {"invert", false}};
}

json sequence(json first, json second) {
  return json{{"type", "Sequence"},
              {"pretokenizers", json::array({std::move(first), std::move(second)})}};
}

}  // namespace

json added_token_json(int32_t id, std::string_view content, bool special, bool normalized) {
  return json{{"id", id},
              {"content", std::string(content)},
              {"single_word", false},
              {"lstrip", false},
              {"rstrip", false},
              {"normalized", normalized},
              {"special", special}};
}

json byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return json{{"type", "ByteLevel"},
              {"add_prefix_space", add_prefix_space},
              {"trim_offsets", trim_offsets},
              {"use_regex", use_regex}};
}

std::string bpe_tokenizer_json(PreTokenizerKind pre, json vocab, json merges, json added) {
  json normalizer = nullptr;
  json pre_tokenizer;
  bool ignore_merges = false;
  switch (pre) {
    case PreTokenizerKind::kQwen2:
      normalizer = json{{"type", "NFC"}};
      pre_tokenizer = sequence(split_json(kQwen2SplitRegex), byte_level_json(false, false, false));
      break;
    case PreTokenizerKind::kLlama3:
      pre_tokenizer = sequence(split_json(kLlama3SplitRegex), byte_level_json(false, false, false));
      ignore_merges = true;
      break;
    case PreTokenizerKind::kSmolLM:
      pre_tokenizer = sequence(split_json(R"(\p{N})"), byte_level_json(false, false, true));
      break;
  }
  const json root = {{"version", "1.0"},
                     {"truncation", nullptr},
                     {"padding", nullptr},
                     {"added_tokens", std::move(added)},
                     {"normalizer", std::move(normalizer)},
                     {"pre_tokenizer", std::move(pre_tokenizer)},
                     {"post_processor", byte_level_json(false, false, false)},
                     {"decoder", byte_level_json(false, false, false)},
                     {"model",
                      {{"type", "BPE"},
                       {"dropout", nullptr},
                       {"unk_token", nullptr},
                       {"continuing_subword_prefix", ""},
                       {"end_of_word_suffix", ""},
                       {"fuse_unk", false},
                       {"byte_fallback", false},
                       {"ignore_merges", ignore_merges},
                       {"vocab", std::move(vocab)},
                       {"merges", std::move(merges)}}}};
  return root.dump();
}

}  // namespace r1
