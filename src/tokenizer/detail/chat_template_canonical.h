// A whitespace-insensitive fingerprint of a Jinja template, used to recognise a
// known chat template that was re-indented or re-wrapped (GGUF converters and
// hand-edited tokenizer_config.json files do this) without accepting anything
// that could render differently.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace r1::detail {

// Returns the template's tags ("{{...}}", "{%...%}") in order, with trim
// markers dropped and whitespace outside string literals removed wherever it
// cannot matter (next to brackets, commas, colons and quotes; runs elsewhere
// become one space). Returns nullopt when the template has any output text
// that Jinja would not strip under the Hugging Face settings (trim_blocks,
// lstrip_blocks, "-" markers, one trailing newline dropped), a comment, or an
// unterminated tag or string: such templates are never treated as known.
std::optional<std::string> jinja_canonical_form(std::string_view source);

}  // namespace r1::detail
