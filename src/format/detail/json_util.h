// JSON helpers shared by the format parsers: every nlohmann exception is caught
// here or in the caller, so none leaves the module.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace r1::detail {

// The whole file as bytes. NOT_FOUND when missing (the message names the path).
Result<std::string> read_text_file(const std::string& path);

// Parses `text` as JSON. A syntax error, or an object holding the same key
// twice, is INVALID_ARGUMENT "<what>: ..." (nlohmann would silently keep the
// last of two equal keys, which would hide a duplicated tensor or shard entry).
Result<nlohmann::json> parse_json(std::string_view text, std::string_view what);

// "object", "array", "string", "number", "boolean", "null" for messages.
std::string json_type_name(const nlohmann::json& v);

// The value when `v` is a JSON integer that fits int64 (floats such as 2.0 and
// 2.5 are not integers here); nullopt otherwise.
std::optional<int64_t> json_int64(const nlohmann::json& v);

// `key` of `obj` or nullptr; a null value counts as absent.
const nlohmann::json* find_key(const nlohmann::json& obj, std::string_view key);

}  // namespace r1::detail
