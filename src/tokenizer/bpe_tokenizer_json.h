// Writing a Hugging Face tokenizer.json for a byte-level BPE, for the
// tokenizers r1serve assembles itself: the R1-Distill vocabularies that
// make-test-model writes (distill_vocab.h) and the tokenizer a GGUF file's
// tokenizer.ggml.* metadata describes (model/gguf_model.cpp). Tokenizer
// parses the result like any tokenizer.json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace r1 {

// The pre-tokenizer families of the R1 distills and of SmolLM2:
// - kQwen2: NFC, then Qwen2's split regex (llama.cpp's "qwen2" and
//   "deepseek-r1-qwen"), then ByteLevel;
// - kLlama3: Llama-3's split regex, then ByteLevel, with ignore_merges
//   (llama.cpp's "llama-bpe");
// - kSmolLM: digits one by one, then GPT-2's ByteLevel split.
enum class PreTokenizerKind { kQwen2, kLlama3, kSmolLM };

// An added_tokens entry.
nlohmann::json added_token_json(int32_t id, std::string_view content, bool special,
                                bool normalized = false);

// A ByteLevel pre-tokenizer / post-processor / decoder entry.
nlohmann::json byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex);

// tokenizer.json text: `vocab` maps token text to id, `merges` lists "a b"
// strings or ["a", "b"] pairs, `added` holds added_token_json entries.
std::string bpe_tokenizer_json(PreTokenizerKind pre, nlohmann::json vocab, nlohmann::json merges,
                               nlohmann::json added);

}  // namespace r1
