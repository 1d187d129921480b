// Byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (+
// tokenizer_config.json): the Qwen2 and Llama-3 variants used by the
// R1-Distill models (../shared/reference/model-facts.md §2.1-2.3).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace r1 {

class Tokenizer {
 public:
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Loads dir/tokenizer.json and, when present, dir/tokenizer_config.json
  // (bos/eos token names, add_bos_token, chat template).
  static Result<Tokenizer> load(const std::string& dir);
  // From the file contents; config_json may be empty.
  static Result<Tokenizer> from_json(const std::string& tokenizer_json,
                                     const std::string& config_json);

  // Same as HF encode(text, add_special_tokens=...). With false, no BOS is
  // added: use it for rendered chat prompts, which carry their own BOS.
  // Fails only on invalid UTF-8 input.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens = false) const;

  // encode(text, false), except that inside `literal` byte ranges ([begin,
  // end) offsets into text) added tokens are not matched: their text is
  // tokenised as ordinary text together with its neighbours. A rendered
  // chat prompt passes the ranges of client-supplied content, so a message
  // cannot forge the template's role markers or </think>.
  Result<std::vector<int32_t>> encode_with_literals(
      std::string_view text, std::span<const std::pair<size_t, size_t>> literal) const;

  // Concatenated bytes of the tokens, decoded from the byte-level alphabet;
  // invalid UTF-8 becomes U+FFFD. skip_special drops tokens flagged special.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Raw bytes of one token (may be a partial UTF-8 sequence). Empty for an id
  // outside the vocabulary.
  const std::string& token_bytes(int32_t id) const;

  // Number of ids the tokenizer knows (vocab + added tokens); ids beyond this
  // in a model's embedding are padding.
  int32_t n_tokens() const;
  bool is_special(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token_text) const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool add_bos_token() const;
  // The "chat_template" string of tokenizer_config.json, empty if absent.
  const std::string& chat_template_source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  Result<std::vector<int32_t>> encode_impl(
      std::string_view text, bool add_special_tokens,
      std::span<const std::pair<size_t, size_t>> literal) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1
