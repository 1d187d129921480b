#include "tokenizer/detail/chat_template_canonical.h"

#include <vector>

namespace r1::detail {
namespace {

enum class TagKind { kExpression, kStatement };

struct Tag {
  TagKind kind;
  bool trim_left = false;   // "{{-" / "{%-": strips whitespace before the tag
  bool trim_right = false;  // "-}}" / "-%}": strips whitespace after the tag
  std::string body;         // between the markers, as written
};

// Text between tags (or before the first / after the last).
struct Piece {
  std::string text;
  const Tag* prev = nullptr;  // null at the start of the template
  const Tag* next = nullptr;  // null at the end of the template
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// Whitespace next to these cannot join or split a Jinja token.
bool is_separator(char c) {
  switch (c) {
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case ',':
    case ':':
    case '\'':
    case '"':
      return true;
    default:
      return false;
  }
}

// Whether `text` renders as nothing given the tags around it: "-" markers
// strip all whitespace; trim_blocks drops one newline after a statement tag;
// lstrip_blocks drops blanks between a line start and a statement tag.
bool renders_empty(const Piece& piece) {
  std::string_view s = piece.text;
  if (s.empty()) return true;
  bool all_space = true;
  for (char c : s) all_space = all_space && is_space(c);
  if (all_space &&
      ((piece.prev && piece.prev->trim_right) || (piece.next && piece.next->trim_left))) {
    return true;
  }
  bool at_line_start = piece.prev == nullptr;
  if (piece.prev && piece.prev->kind == TagKind::kStatement && s.front() == '\n') {
    s.remove_prefix(1);
    at_line_start = true;
  }
  if (piece.next && piece.next->kind == TagKind::kStatement) {
    size_t nl = s.rfind('\n');
    std::string_view tail = nl == std::string_view::npos ? s : s.substr(nl + 1);
    bool blank = true;
    for (char c : tail) blank = blank && is_blank(c);
    if (blank && (nl != std::string_view::npos || at_line_start)) {
      s.remove_suffix(tail.size());
    }
  }
  return s.empty();
}

// Copies a tag body with the whitespace outside string literals normalised.
// Returns false on an unterminated string.
bool normalise_body(std::string_view body, std::string& out) {
  bool pending_space = false;
  size_t i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (is_space(c)) {
      pending_space = true;
      ++i;
      continue;
    }
    if (pending_space && !out.empty() && !is_separator(out.back()) && !is_separator(c)) {
      out.push_back(' ');
    }
    pending_space = false;
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < body.size() && body[j] != c) j += body[j] == '\\' ? 2 : 1;
      if (j >= body.size()) return false;
      out.append(body.substr(i, j + 1 - i));
      i = j + 1;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return true;
}

// Finds the end of the tag body starting at `pos` (the closer "}}" or "%}"
// outside string literals). Returns npos when unterminated.
size_t find_closer(std::string_view src, size_t pos, char closer_first) {
  while (pos + 1 < src.size()) {
    char c = src[pos];
    if (c == '\'' || c == '"') {
      size_t j = pos + 1;
      while (j < src.size() && src[j] != c) j += src[j] == '\\' ? 2 : 1;
      if (j >= src.size()) return std::string_view::npos;
      pos = j + 1;
      continue;
    }
    if (c == closer_first && src[pos + 1] == '}') return pos;
    ++pos;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> jinja_canonical_form(std::string_view source) {
  // Jinja (keep_trailing_newline=False, as transformers renders) drops one
  // trailing newline of the source.
  if (!source.empty() && source.back() == '\n') source.remove_suffix(1);

  std::vector<Tag> tags;
  std::vector<std::pair<std::string, size_t>> texts;  // text, index of the next tag
  size_t pos = 0;
  while (pos < source.size()) {
    size_t open = std::string_view::npos;
    for (size_t i = pos; i + 1 < source.size(); ++i) {
      if (source[i] == '{' &&
          (source[i + 1] == '{' || source[i + 1] == '%' || source[i + 1] == '#')) {
        open = i;
        break;
      }
    }
    if (open == std::string_view::npos) {
      texts.emplace_back(std::string(source.substr(pos)), tags.size());
      break;
    }
    texts.emplace_back(std::string(source.substr(pos, open - pos)), tags.size());
    if (source[open + 1] == '#') return std::nullopt;  // comments: not in any known template
    Tag tag;
    tag.kind = source[open + 1] == '{' ? TagKind::kExpression : TagKind::kStatement;
    size_t body_begin = open + 2;
    if (body_begin < source.size() && source[body_begin] == '-') {
      tag.trim_left = true;
      ++body_begin;
    }
    size_t close = find_closer(source, body_begin, tag.kind == TagKind::kExpression ? '}' : '%');
    if (close == std::string_view::npos) return std::nullopt;
    size_t body_end = close;
    if (body_end > body_begin && source[body_end - 1] == '-') {
      tag.trim_right = true;
      --body_end;
    }
    tag.body = std::string(source.substr(body_begin, body_end - body_begin));
    tags.push_back(std::move(tag));
    pos = close + 2;
  }

  for (const auto& [text, next_index] : texts) {
    Piece piece{text, next_index > 0 ? &tags[next_index - 1] : nullptr,
                next_index < tags.size() ? &tags[next_index] : nullptr};
    if (!renders_empty(piece)) return std::nullopt;
  }

  std::string out;
  for (const Tag& tag : tags) {
    out += tag.kind == TagKind::kExpression ? "{{" : "{%";
    std::string body;
    if (!normalise_body(tag.body, body)) return std::nullopt;
    out += body;
    out += tag.kind == TagKind::kExpression ? "}}" : "%}";
  }
  return out;
}

}  // namespace r1::detail
