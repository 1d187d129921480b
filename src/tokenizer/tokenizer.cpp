#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/detail/added_tokens.h"
#include "tokenizer/detail/bpe.h"
#include "tokenizer/detail/byte_level.h"
#include "tokenizer/detail/normalizer.h"
#include "tokenizer/detail/pretokenizer.h"
#include "tokenizer/detail/utf8.h"

namespace r1 {

using nlohmann::json;

struct Tokenizer::Impl {
  Impl(detail::BpeModel b, detail::Normalizer n, detail::PreTokenizer p)
      : bpe(std::move(b)), normalizer(n), pre_tokenizer(std::move(p)) {}

  detail::BpeModel bpe;
  detail::Normalizer normalizer;
  detail::PreTokenizer pre_tokenizer;
  detail::AddedTokenMatcher added_matcher;
  detail::TokenIdMap added_by_content;

  int32_t n_tokens = 0;
  std::vector<std::string> id_bytes;  // [n_tokens] raw bytes of each token
  std::vector<uint8_t> id_special;    // [n_tokens] 1 for added tokens flagged special

  std::vector<int32_t> prefix_ids;  // what add_special_tokens puts before the text
  std::vector<int32_t> suffix_ids;  // ... and after it
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::string chat_template;

  // Parses tokenizer.json and tokenizer_config.json (contents; config may be
  // empty). May throw nlohmann::json::exception on unexpected value types.
  static Result<std::unique_ptr<Impl>> build(const std::string& tokenizer_json,
                                             const std::string& config_json);

  std::optional<int32_t> lookup(std::string_view token) const {
    if (const auto it = added_by_content.find(token); it != added_by_content.end()) {
      return it->second;
    }
    if (const auto it = bpe.vocab().find(token); it != bpe.vocab().end()) return it->second;
    return std::nullopt;
  }
};

namespace {

Result<std::vector<detail::AddedToken>> parse_added_tokens(const json& root) {
  std::vector<detail::AddedToken> tokens;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return tokens;
  const json& list = root["added_tokens"];
  if (!list.is_array()) return invalid_argument("tokenizer.json: added_tokens is not an array");
  for (const json& entry : list) {
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_integer() ||
        !entry.contains("content") || !entry["content"].is_string() ||
        entry["id"].get<int64_t>() < 0 || entry["id"].get<int64_t>() >= detail::kMaxTokenIds) {
      return invalid_argument("tokenizer.json: every added token needs an integer \"id\" (0.." +
                              std::to_string(detail::kMaxTokenIds - 1) +
                              ") and a string \"content\"");
    }
    detail::AddedToken token;
    token.id = static_cast<int32_t>(entry["id"].get<int64_t>());
    token.content = entry["content"].get<std::string>();
    if (token.content.empty()) {
      return invalid_argument("tokenizer.json: added token " + std::to_string(token.id) +
                              " has empty content");
    }
    token.special = entry.value("special", false);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    if (entry.value("single_word", false)) {
      return unimplemented("tokenizer.json: added token \"" + token.content +
                           "\" uses single_word, which is not supported");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

Status check_decoder(const json& decoder) {
  const std::string type =
      decoder.is_object() ? decoder.value("type", std::string()) : std::string("null");
  if (type != "ByteLevel") {
    return unimplemented("tokenizer.json: decoder \"" + type +
                         "\" is not supported (only ByteLevel)");
  }
  return ok_status();
}

// Collects TemplateProcessing's single-sequence template: special tokens
// before "$A" go to prefix, after it to suffix. ByteLevel adds nothing.
Status parse_post_processor(const json& pp, std::vector<int32_t>& prefix,
                            std::vector<int32_t>& suffix) {
  if (pp.is_null()) return ok_status();
  const std::string type = pp.is_object() ? pp.value("type", std::string()) : std::string();
  if (type == "ByteLevel") return ok_status();
  if (type == "Sequence") {
    if (!pp.contains("processors") || !pp["processors"].is_array()) {
      return invalid_argument("tokenizer.json: post_processor Sequence without \"processors\"");
    }
    for (const json& inner : pp["processors"]) {
      R1_RETURN_IF_ERROR(parse_post_processor(inner, prefix, suffix));
    }
    return ok_status();
  }
  if (type == "TemplateProcessing") {
    if (!pp.contains("single") || !pp["single"].is_array()) {
      return invalid_argument("tokenizer.json: TemplateProcessing without a \"single\" template");
    }
    const json specials = pp.value("special_tokens", json::object());
    bool after_sequence = false;
    for (const json& item : pp["single"]) {
      if (item.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id")) {
        return invalid_argument(
            "tokenizer.json: TemplateProcessing item is neither a Sequence "
            "nor a SpecialToken");
      }
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      if (!specials.contains(name) || !specials[name].contains("ids") ||
          !specials[name]["ids"].is_array()) {
        return invalid_argument("tokenizer.json: TemplateProcessing special token \"" + name +
                                "\" has no ids in special_tokens");
      }
      for (const json& id : specials[name]["ids"]) {
        (after_sequence ? suffix : prefix).push_back(id.get<int32_t>());
      }
    }
    return ok_status();
  }
  return unimplemented("tokenizer.json: post_processor \"" + type + "\" is not supported");
}

// bos_token / eos_token in tokenizer_config.json: a string, an AddedToken
// object {"content": ...}, or null.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::nullopt;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return data_loss("cannot read " + path);
  return ss.str();
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Result<Tokenizer> Tokenizer::load(const std::string& dir) {
  R1_ASSIGN_OR_RETURN(std::string tokenizer_json, read_file(dir + "/tokenizer.json"));
  std::string config_json;
  const std::string config_path = dir + "/tokenizer_config.json";
  if (std::ifstream(config_path).good()) {
    R1_ASSIGN_OR_RETURN(config_json, read_file(config_path));
  }
  Result<Tokenizer> tok = from_json(tokenizer_json, config_json);
  if (!tok.ok()) return tok.status().with_context("loading tokenizer from " + dir);
  return tok;
}

Result<Tokenizer> Tokenizer::from_json(const std::string& tokenizer_json,
                                       const std::string& config_json) {
  try {
    R1_ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::build(tokenizer_json, config_json));
    return Tokenizer(std::move(impl));
  } catch (const json::exception& e) {
    return invalid_argument(std::string("tokenizer files: ") + e.what());
  }
}

auto Tokenizer::Impl::build(const std::string& tokenizer_json, const std::string& config_json)
    -> Result<std::unique_ptr<Impl>> {
  json root;
  try {
    root = json::parse(tokenizer_json);
  } catch (const json::parse_error& e) {
    return invalid_argument(std::string("tokenizer.json is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) return invalid_argument("tokenizer.json: the top level is not an object");
  json config = json::object();
  if (!config_json.empty()) {
    try {
      config = json::parse(config_json);
    } catch (const json::parse_error& e) {
      return invalid_argument(std::string("tokenizer_config.json is not valid JSON: ") + e.what());
    }
    if (!config.is_object()) {
      return invalid_argument("tokenizer_config.json: the top level is not an object");
    }
  }

  if (!root.contains("model")) return invalid_argument("tokenizer.json: no \"model\"");
  R1_ASSIGN_OR_RETURN(detail::BpeModel bpe, detail::BpeModel::from_json(root["model"]));
  R1_ASSIGN_OR_RETURN(detail::Normalizer normalizer,
                      detail::Normalizer::from_json(root.value("normalizer", json())));
  R1_ASSIGN_OR_RETURN(detail::PreTokenizer pre,
                      detail::PreTokenizer::from_json(root.value("pre_tokenizer", json())));
  R1_RETURN_IF_ERROR(check_decoder(root.value("decoder", json())));
  R1_ASSIGN_OR_RETURN(std::vector<detail::AddedToken> added, parse_added_tokens(root));

  auto impl = std::make_unique<Impl>(std::move(bpe), normalizer, std::move(pre));
  Impl& t = *impl;
  t.added_matcher = detail::AddedTokenMatcher(added);

  t.n_tokens = t.bpe.id_limit();
  for (const detail::AddedToken& a : added) t.n_tokens = std::max(t.n_tokens, a.id + 1);
  const detail::ByteLevelAlphabet& alphabet = detail::ByteLevelAlphabet::get();
  t.id_bytes.resize(t.n_tokens);
  t.id_special.assign(t.n_tokens, 0);
  for (const auto& [token, id] : t.bpe.vocab()) t.id_bytes[id] = alphabet.decode_token(token);
  for (const detail::AddedToken& a : added) {
    t.id_bytes[a.id] = alphabet.decode_token(a.content);
    t.id_special[a.id] = a.special ? 1 : 0;
    t.added_by_content.emplace(a.content, a.id);
  }

  std::vector<int32_t> template_prefix, template_suffix;
  R1_RETURN_IF_ERROR(
      parse_post_processor(root.value("post_processor", json()), template_prefix, template_suffix));
  for (const int32_t id : template_prefix) {
    if (id < 0 || id >= t.n_tokens) {
      return invalid_argument("tokenizer.json: post_processor names unknown id " +
                              std::to_string(id));
    }
  }

  for (const auto& [key, slot] : {std::pair{"bos_token", &t.bos}, std::pair{"eos_token", &t.eos}}) {
    const std::optional<std::string> name = config_token(config, key);
    if (!name) continue;
    *slot = t.lookup(*name);
    if (!*slot) {
      return invalid_argument(std::string("tokenizer_config.json: ") + key + " \"" + *name +
                              "\" is not a token of tokenizer.json");
    }
  }
  if (config.contains("add_bos_token") || config.contains("add_eos_token")) {
    // LlamaTokenizerFast rebuilds its post-processor from these flags.
    if (config.value("add_bos_token", false)) {
      if (!t.bos) return invalid_argument("tokenizer_config.json: add_bos_token without bos_token");
      t.prefix_ids.push_back(*t.bos);
    }
    if (config.value("add_eos_token", false)) {
      if (!t.eos) return invalid_argument("tokenizer_config.json: add_eos_token without eos_token");
      t.suffix_ids.push_back(*t.eos);
    }
  } else {
    t.prefix_ids = template_prefix;
    t.suffix_ids = template_suffix;
    if (!t.bos && !t.prefix_ids.empty()) t.bos = t.prefix_ids.front();
  }

  if (config.contains("chat_template")) {
    const json& ct = config["chat_template"];
    if (ct.is_string()) {
      t.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {  // [{"name": ..., "template": ...}]: the default one
      for (const json& entry : ct) {
        if (entry.value("name", std::string()) == "default") {
          t.chat_template = entry.value("template", std::string());
        }
      }
    }
  }
  return impl;
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                               bool add_special_tokens) const {
  return encode_impl(text, add_special_tokens, {});
}

Result<std::vector<int32_t>> Tokenizer::encode_with_literals(
    std::string_view text, std::span<const std::pair<size_t, size_t>> literal) const {
  return encode_impl(text, false, literal);
}

Result<std::vector<int32_t>> Tokenizer::encode_impl(
    std::string_view text, bool add_special_tokens,
    std::span<const std::pair<size_t, size_t>> literal) const {
  const size_t bad = detail::utf8_first_invalid(text);
  if (bad != std::string_view::npos) {
    return invalid_argument("text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  const Impl& t = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = t.prefix_ids;

  std::vector<detail::Segment> segments;
  t.added_matcher.split(text, segments);
  if (!literal.empty()) {
    // An added token touching a literal range is text; runs of text
    // segments then merge (they are contiguous in `text`).
    std::vector<detail::Segment> merged;
    for (detail::Segment seg : segments) {
      if (seg.added_id >= 0) {
        const size_t b = static_cast<size_t>(seg.text.data() - text.data());
        const size_t e = b + seg.text.size();
        for (const auto& [lb, le] : literal) {
          if (b < le && lb < e) seg.added_id = -1;
        }
      }
      if (seg.added_id < 0 && !merged.empty() && merged.back().added_id < 0 &&
          merged.back().text.data() + merged.back().text.size() == seg.text.data()) {
        merged.back().text = std::string_view(merged.back().text.data(),
                                              merged.back().text.size() + seg.text.size());
      } else {
        merged.push_back(seg);
      }
    }
    segments = std::move(merged);
  }
  std::string normalized;
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  for (const detail::Segment& seg : segments) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      continue;
    }
    const std::string_view section = t.normalizer.normalize(seg.text, normalized);
    R1_RETURN_IF_ERROR(t.pre_tokenizer.split(section, pieces, arena));
    for (const std::string_view piece : pieces) t.bpe.encode(piece, ids);
    arena.clear();
  }
  if (add_special_tokens) ids.insert(ids.end(), t.suffix_ids.begin(), t.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= impl_->n_tokens) continue;
    if (skip_special && impl_->id_special[id]) continue;
    bytes += impl_->id_bytes[id];
  }
  if (detail::utf8_first_invalid(bytes) == std::string::npos) return bytes;
  return detail::utf8_lossy(bytes);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= impl_->n_tokens) return kEmpty;
  return impl_->id_bytes[id];
}

int32_t Tokenizer::n_tokens() const {
  return impl_->n_tokens;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->n_tokens && impl_->id_special[id] != 0;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token_text) const {
  return impl_->lookup(token_text);
}

std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->eos;
}

bool Tokenizer::add_bos_token() const {
  return impl_->bos && !impl_->prefix_ids.empty() && impl_->prefix_ids.front() == *impl_->bos;
}

const std::string& Tokenizer::chat_template_source() const {
  return impl_->chat_template;
}

}  // namespace r1
