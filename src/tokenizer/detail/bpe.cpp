#include "tokenizer/detail/bpe.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "tokenizer/detail/byte_level.h"

namespace r1::detail {
namespace {

bool null_or_empty_string(const nlohmann::json& model, const char* key) {
  if (!model.contains(key) || model[key].is_null()) return true;
  return model[key].is_string() && model[key].get_ref<const std::string&>().empty();
}

}  // namespace

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      merges_(std::move(other.merges_)),
      ignore_merges_(other.ignore_merges_),
      id_limit_(other.id_limit_) {
  std::memcpy(byte_ids_, other.byte_ids_, sizeof(byte_ids_));
}

BpeModel& BpeModel::operator=(BpeModel&& other) noexcept {
  vocab_ = std::move(other.vocab_);
  merges_ = std::move(other.merges_);
  std::memcpy(byte_ids_, other.byte_ids_, sizeof(byte_ids_));
  ignore_merges_ = other.ignore_merges_;
  id_limit_ = other.id_limit_;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.clear();
  return *this;
}

Result<BpeModel> BpeModel::from_json(const nlohmann::json& model) {
  if (!model.is_object()) return invalid_argument("tokenizer.json: \"model\" is not an object");
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") {
    return unimplemented("tokenizer.json: model type \"" + type + "\" is not supported (only BPE)");
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0)) {
    return unimplemented("tokenizer.json: BPE dropout is not supported");
  }
  if (model.value("byte_fallback", false)) {
    return unimplemented("tokenizer.json: BPE byte_fallback is not supported");
  }
  if (!null_or_empty_string(model, "continuing_subword_prefix") ||
      !null_or_empty_string(model, "end_of_word_suffix")) {
    return unimplemented(
        "tokenizer.json: BPE continuing_subword_prefix / end_of_word_suffix are not supported");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return invalid_argument("tokenizer.json: model.vocab is missing or not an object");
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return invalid_argument("tokenizer.json: model.merges is missing or not an array");
  }

  BpeModel bpe;
  bpe.ignore_merges_ = model.value("ignore_merges", false);
  const nlohmann::json& vocab = model["vocab"];
  bpe.vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenIds) {
      return invalid_argument("tokenizer.json: vocab entry \"" + token +
                              "\" has no valid id (a non-negative integer below " +
                              std::to_string(kMaxTokenIds) + ")");
    }
    const auto value = static_cast<int32_t>(id.get<int64_t>());
    bpe.vocab_.emplace(token, value);
    bpe.id_limit_ = std::max(bpe.id_limit_, value + 1);
  }

  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  for (int b = 0; b < 256; ++b) {
    const auto it = bpe.vocab_.find(alphabet.utf8(static_cast<uint8_t>(b)));
    bpe.byte_ids_[b] = it == bpe.vocab_.end() ? -1 : it->second;
  }

  const nlohmann::json& merges = model["merges"];
  bpe.merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& m = merges[rank];
    std::string_view a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return invalid_argument("tokenizer.json: merge " + std::to_string(rank) + " \"" + s +
                                "\" is not two tokens separated by one space");
      }
      a = std::string_view(s).substr(0, space);
      b = std::string_view(s).substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get_ref<const std::string&>();
      b = m[1].get_ref<const std::string&>();
    } else {
      return invalid_argument("tokenizer.json: merge " + std::to_string(rank) +
                              " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const auto ia = bpe.vocab_.find(a);
    const auto ib = bpe.vocab_.find(b);
    merged.assign(a);
    merged.append(b);
    const auto im = bpe.vocab_.find(merged);
    if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end() || im == bpe.vocab_.end()) {
      return invalid_argument("tokenizer.json: merge " + std::to_string(rank) + " (\"" +
                              std::string(a) + "\", \"" + std::string(b) +
                              "\") uses a token that is not in the vocab");
    }
    // A repeated pair keeps its last rank, as Hugging Face's map does.
    bpe.merges_.insert_or_assign(pair_key(ia->second, ib->second),
                                 Merge{static_cast<int32_t>(rank), im->second});
  }
  return bpe;
}

void BpeModel::merge_word(std::string_view piece, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // left symbol
    int32_t left_id;
    int32_t right_id;
    int32_t merged_id;
  };
  // Min-heap on (rank, pos): the lowest rank merges first, leftmost on ties.
  const auto later = [](const Candidate& x, const Candidate& y) {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };

  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (const char c : piece) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) continue;  // a vocab without this byte: the byte is dropped (no unk)
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, n + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<Candidate> heap;
  const auto push_pair = [&](int32_t pos) {
    const Symbol& left = symbols[pos];
    const Symbol& right = symbols[left.next];
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, left.id, right.id, it->second.merged_id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    // Stale candidates: a side was merged away since the pair was queued.
    if (!left.alive || left.next < 0 || left.id != top.left_id) continue;
    Symbol& right = symbols[left.next];
    if (right.id != top.right_id) continue;
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    if (left.next >= 0) push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    std::string encoded;
    ByteLevelAlphabet::get().append_encoded(piece, encoded);
    const auto it = vocab_.find(encoded);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (piece.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(piece[0])];
    if (id >= 0) ids.push_back(id);
    return;
  }
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    std::unique_lock<std::mutex> lock(cache_mutex_, std::try_to_lock);
    if (lock.owns_lock()) {
      const auto it = cache_.find(piece);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
  }
  const size_t first = ids.size();
  merge_word(piece, ids);
  if (cacheable) {
    std::unique_lock<std::mutex> lock(cache_mutex_, std::try_to_lock);
    if (lock.owns_lock()) {
      if (cache_.size() >= kCacheCapacity) cache_.clear();
      cache_.emplace(std::string(piece), std::vector<int32_t>(ids.begin() + first, ids.end()));
    }
  }
}

}  // namespace r1::detail
