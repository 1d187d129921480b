#include "tokenizer/detail/added_tokens.h"

#include "tokenizer/detail/utf8.h"

namespace r1::detail {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  nodes_.emplace_back();  // root
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& content = tokens_[t].content;
    if (content.empty()) continue;
    first_byte_[static_cast<uint8_t>(content[0])] = true;
    int32_t node = 0;
    for (const char c : content) {
      const auto byte = static_cast<uint8_t>(c);
      int32_t next = child(node, byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(byte, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    // Two entries with the same content: the first one keeps the string.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
  }
  return -1;
}

size_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, int32_t& token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token >= 0) {
      best = i + 1 - pos;
      token = nodes_[node].token;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& segments) const {
  size_t start = 0;  // start of the pending normal text
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t token = -1;
    const size_t len =
        first_byte_[static_cast<uint8_t>(text[pos])] ? longest_at(text, pos, token) : 0;
    if (len == 0) {
      ++pos;
      continue;
    }
    const AddedToken& added = tokens_[token];
    size_t text_end = pos;
    if (added.lstrip) {
      // Walk back over whitespace characters of the pending text.
      while (text_end > start) {
        size_t back = text_end - 1;
        while (back > start && (static_cast<uint8_t>(text[back]) & 0xC0) == 0x80) --back;
        size_t i = back;
        if (!is_unicode_white_space(utf8_next(text, i))) break;
        text_end = back;
      }
    }
    if (text_end > start) segments.push_back({text.substr(start, text_end - start), -1});
    segments.push_back({text.substr(pos, len), added.id});
    pos += len;
    if (added.rstrip) {
      while (pos < text.size()) {
        size_t i = pos;
        if (!is_unicode_white_space(utf8_next(text, i))) break;
        pos = i;
      }
    }
    start = pos;
  }
  if (start < text.size()) segments.push_back({text.substr(start), -1});
}

}  // namespace r1::detail
