#include "format/detail/json_util.h"

#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "format/mapped_file.h"

namespace r1::detail {

using nlohmann::json;

Result<std::string> read_text_file(const std::string& path) {
  R1_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  if (file.size() == 0) return std::string();
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

Result<json> parse_json(std::string_view text, std::string_view what) {
  // One set of seen keys per open object; arrays do not open a key scope.
  std::vector<std::set<std::string>> scopes;
  std::optional<std::string> duplicate;
  auto on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        scopes.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!scopes.empty()) scopes.pop_back();
        break;
      case json::parse_event_t::key:
        if (!scopes.empty() && parsed.is_string() &&
            !scopes.back().insert(parsed.get<std::string>()).second && !duplicate) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann's lexer takes a NUL byte for the end of input and would ignore
  // whatever follows; JSON text can never hold a raw NUL, so reject it here.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return invalid_argument(std::string(what) + ": not valid JSON: NUL byte at offset " +
                            std::to_string(nul));
  }
  json value;
  try {
    value = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    return invalid_argument(std::string(what) + ": not valid JSON: " + e.what());
  }
  if (duplicate) {
    return invalid_argument(std::string(what) + ": key \"" + *duplicate + "\" appears twice");
  }
  return value;
}

std::string json_type_name(const json& v) {
  if (v.is_number()) return "number";
  return v.type_name();
}

std::optional<int64_t> json_int64(const json& v) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

const json* find_key(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace r1::detail
