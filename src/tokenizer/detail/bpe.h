// Byte-level BPE model: vocab (token text in the byte-level alphabet -> id)
// and ranked merges. Encodes one pre-tokenized piece of raw UTF-8 bytes by
// repeatedly merging the adjacent pair of lowest rank (leftmost first), as
// Hugging Face's BPE::merge_word does.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace r1::detail {

// Token ids (vocab and added tokens) must be below this: the embedding rows
// config.json may give (vocab_size <= 2^24). The tokenizer keeps a table
// indexed by id, so a larger id would only make a file allocate gigabytes.
inline constexpr int64_t kMaxTokenIds = int64_t{1} << 24;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `model` is the JSON value of "model" (type BPE). Merges may be
  // ["a", "b"] pairs or "a b" strings.
  static Result<BpeModel> from_json(const nlohmann::json& model);

  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&& other) noexcept;

  // Appends the ids of `piece` (raw bytes, not yet byte-level encoded).
  void encode(std::string_view piece, std::vector<int32_t>& ids) const;

  const TokenIdMap& vocab() const { return vocab_; }
  // Largest id in the vocab + 1.
  int32_t id_limit() const { return id_limit_; }
  size_t n_merges() const { return merges_.size(); }

 private:
  BpeModel() = default;
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view piece, std::vector<int32_t>& out) const;

  TokenIdMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_ids_[256];  // id of each byte's single-character token, -1 if absent
  bool ignore_merges_ = false;
  int32_t id_limit_ = 0;

  // Cache of short pieces -> ids. Guarded by cache_mutex_; lookups use
  // try_lock so concurrent encoders never wait on each other (a contended
  // lookup just computes the merges).
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kMaxCachedPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace r1::detail
