// The tokenizer.json "pre_tokenizer" step: splits a normalised section of
// text into the pieces BPE runs on. Supported: Split {Regex or String
// pattern, behavior "Isolated", invert false}, ByteLevel {add_prefix_space,
// use_regex with GPT-2's pattern} and Sequence of those (Qwen2, Llama-3,
// GPT-2 files). Regexes run on PCRE2 (UTF + UCP, JIT-compiled).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace r1::detail {

// A compiled split pattern with Hugging Face's "Isolated" behaviour: every
// match is a piece and so is every unmatched gap between matches.
// Thread-safe: split() may run concurrently.
class SplitRegex {
 public:
  // Patterns are written for Oniguruma (what Hugging Face tokenizers use);
  // `\s` and `\S` are rewritten to the Unicode White_Space property, which
  // is Oniguruma's meaning (PCRE2's own \s also matches U+180E).
  static Result<SplitRegex> compile(std::string_view pattern, bool literal);

  // Appends the pieces of `text` (valid UTF-8) to `pieces`, as views of it.
  Status split(std::string_view text, std::vector<std::string_view>& pieces) const;

  const std::string& source() const { return source_; }

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
  std::string source_;  // the pattern as PCRE2 compiled it
};

// Rewrites `\s` / `\S` of an Oniguruma pattern for PCRE2 (see SplitRegex).
std::string rewrite_for_pcre2(std::string_view pattern);

class PreTokenizer {
 public:
  // `config` is the JSON value of "pre_tokenizer". UNIMPLEMENTED for types,
  // behaviours and options we do not implement; a pre-tokenizer without a
  // ByteLevel step is UNIMPLEMENTED too (the BPE alphabet is byte-level).
  static Result<PreTokenizer> from_json(const nlohmann::json& config);

  // Splits `text` into `pieces` (cleared first). Pieces are views of `text`
  // or of strings appended to `arena` (a prefix space was added).
  Status split(std::string_view text, std::vector<std::string_view>& pieces,
               std::deque<std::string>& arena) const;

 private:
  struct Step {
    bool add_prefix_space = false;      // ByteLevel step
    std::unique_ptr<SplitRegex> regex;  // null: no split in this step
  };
  Status add_step(const nlohmann::json& config);

  std::vector<Step> steps_;
  bool has_byte_level_ = false;
};

}  // namespace r1::detail
