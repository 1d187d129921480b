// The tokenizer.json "normalizer" step. Supported: null (identity), NFC, and
// a Sequence made only of NFC steps (Qwen2). NFC comes from ICU.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace r1::detail {

class Normalizer {
 public:
  // `config` is the JSON value of "normalizer" (may be null). Unknown types
  // are UNIMPLEMENTED with their name.
  static Result<Normalizer> from_json(const nlohmann::json& config);

  bool is_identity() const { return !nfc_; }

  // Returns `text` itself when normalisation leaves it unchanged, else a view
  // of `storage`, which receives the normalised text. `text` is valid UTF-8.
  std::string_view normalize(std::string_view text, std::string& storage) const;

 private:
  bool nfc_ = false;
};

// Unicode NFC of valid UTF-8 text (exposed for tests and tools).
std::string nfc(std::string_view text);

}  // namespace r1::detail
