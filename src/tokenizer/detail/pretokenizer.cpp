#include "tokenizer/detail/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "tokenizer/detail/utf8.h"

namespace r1::detail {
namespace {

// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

struct SplitRegex::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

std::string rewrite_for_pcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool quoted = false;  // inside \Q...\E
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    const char next = pattern[i + 1];
    ++i;
    if (quoted) {
      if (next == 'E') quoted = false;
      out.push_back('\\');
      out.push_back(next);
    } else if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      if (next == 'Q') quoted = true;
      out.push_back('\\');
      out.push_back(next);
    }
  }
  return out;
}

Result<SplitRegex> SplitRegex::compile(std::string_view pattern, bool literal) {
  SplitRegex regex;
  regex.source_ = literal ? std::string(pattern) : rewrite_for_pcre2(pattern);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // PCRE2_LITERAL refuses PCRE2_UCP (a literal has no classes to widen).
  const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.source_.data()),
                                   regex.source_.size(), options, &error, &error_offset, nullptr);
  if (code == nullptr) {
    return invalid_argument("pre_tokenizer: pattern \"" + std::string(pattern) +
                            "\" does not compile at offset " + std::to_string(error_offset) + ": " +
                            pcre2_message(error));
  }
  auto compiled = std::make_shared<Compiled>();
  compiled->code = code;
  // JIT is an optimisation: when it is unavailable pcre2_match interprets.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  regex.compiled_ = std::move(compiled);
  return regex;
}

Status SplitRegex::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return ok_status();
  // Match data holds the ovector; one per call keeps split() thread-safe.
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr));
  if (!md) return resource_exhausted("pre_tokenizer: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;   // where the next match attempt starts
  size_t prev = 0;  // end of the last piece emitted
  while (pos < text.size()) {
    const int rc = pcre2_match(compiled_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK,
                               md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return resource_exhausted("pre_tokenizer: regex match failed at byte " + std::to_string(pos) +
                                ": " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t start = ov[0], end = ov[1];
    if (end == start) {  // empty match: it splits nothing; retry one character on
      if (start >= text.size()) break;
      pos = start;
      utf8_next(text, pos);
      continue;
    }
    if (start > prev) pieces.push_back(text.substr(prev, start - prev));
    pieces.push_back(text.substr(start, end - start));
    prev = pos = end;
  }
  if (prev < text.size()) pieces.push_back(text.substr(prev));
  return ok_status();
}

Status PreTokenizer::add_step(const nlohmann::json& config) {
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) {
    return invalid_argument("pre_tokenizer: every step needs a string \"type\"");
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "Sequence") {
    if (!config.contains("pretokenizers") || !config["pretokenizers"].is_array()) {
      return invalid_argument("pre_tokenizer: Sequence without a \"pretokenizers\" array");
    }
    for (const nlohmann::json& inner : config["pretokenizers"]) R1_RETURN_IF_ERROR(add_step(inner));
    return ok_status();
  }
  if (type == "Split") {
    const std::string behavior = config.value("behavior", std::string());
    if (behavior != "Isolated") {
      return unimplemented("pre_tokenizer: Split behavior \"" + behavior +
                           "\" is not supported (only Isolated)");
    }
    if (config.value("invert", false)) {
      return unimplemented("pre_tokenizer: Split with invert true is not supported");
    }
    if (!config.contains("pattern") || !config["pattern"].is_object()) {
      return invalid_argument("pre_tokenizer: Split without a \"pattern\" object");
    }
    const nlohmann::json& pattern = config["pattern"];
    const bool literal = !pattern.contains("Regex");
    const char* key = literal ? "String" : "Regex";
    if (!pattern.contains(key) || !pattern[key].is_string()) {
      return invalid_argument("pre_tokenizer: Split pattern needs a \"Regex\" or \"String\"");
    }
    R1_ASSIGN_OR_RETURN(SplitRegex regex,
                        SplitRegex::compile(pattern[key].get<std::string>(), literal));
    Step step;
    step.regex = std::make_unique<SplitRegex>(std::move(regex));
    steps_.push_back(std::move(step));
    return ok_status();
  }
  if (type == "ByteLevel") {
    has_byte_level_ = true;
    Step step;
    step.add_prefix_space = config.value("add_prefix_space", false);
    if (config.value("use_regex", true)) {
      R1_ASSIGN_OR_RETURN(SplitRegex regex, SplitRegex::compile(kGpt2Pattern, false));
      step.regex = std::make_unique<SplitRegex>(std::move(regex));
    }
    if (step.add_prefix_space || step.regex) steps_.push_back(std::move(step));
    return ok_status();
  }
  return unimplemented("pre_tokenizer type \"" + type + "\" is not supported");
}

Result<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& config) {
  PreTokenizer pre;
  if (!config.is_null()) R1_RETURN_IF_ERROR(pre.add_step(config));
  if (!pre.has_byte_level_) {
    return unimplemented("pre_tokenizer without a ByteLevel step is not supported");
  }
  return pre;
}

Status PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces,
                           std::deque<std::string>& arena) const {
  pieces.clear();
  if (text.empty()) return ok_status();
  pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const Step& step : steps_) {
    next.clear();
    for (std::string_view piece : pieces) {
      if (step.add_prefix_space && piece.front() != ' ') {
        std::string& prefixed = arena.emplace_back(1, ' ');
        prefixed.append(piece);
        piece = prefixed;
      }
      if (step.regex) {
        R1_RETURN_IF_ERROR(step.regex->split(piece, next));
      } else {
        next.push_back(piece);
      }
    }
    pieces.swap(next);
  }
  return ok_status();
}

}  // namespace r1::detail
