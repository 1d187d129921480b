// Finds added tokens (tokenizer.json "added_tokens") in raw text: at each
// position the longest token that starts there wins, scanning left to right
// (Hugging Face's leftmost-longest Aho-Corasick). Matched spans become their
// ids and skip normalisation, pre-tokenization and BPE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1::detail {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;  // the match also swallows whitespace on its left
  bool rstrip = false;  // ... and on its right
};

// A span of the input: either an added token or text for the normal path.
struct Segment {
  std::string_view text;
  int32_t added_id = -1;  // >= 0: an added token
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Splits `text` (valid UTF-8) into segments, in order; empty text segments
  // are left out.
  void split(std::string_view text, std::vector<Segment>& segments) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node index
    int32_t token = -1;                                 // index into tokens_ when a token ends here
  };
  int32_t child(int32_t node, uint8_t byte) const;
  // Length of the longest token starting at text[pos] and its index, or 0.
  size_t longest_at(std::string_view text, size_t pos, int32_t& token) const;

  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace r1::detail
