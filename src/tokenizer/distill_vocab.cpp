#include "tokenizer/distill_vocab.h"

#include <array>
#include <map>

#include <nlohmann/json.hpp>

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
// the Llama-3.1 names of 128004/128008/128010, which the npm file (Llama-3.0
// naming) has as reserved tokens. Flags: User/Assistant/think are not
// special; the others keep the npm file's flag (special).
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

json added_token_json(int32_t id, std::string_view content, bool special) {
  return json{{"id", id},
              {"content", std::string(content)},
              {"single_word", false},
              {"lstrip", false},
              {"rstrip", false},
              {"normalized", false},
              {"special", special}};
}

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

// Replaces every string and object key equal to a key of `names`.
json rename_strings(const json& value, const std::map<std::string, std::string>& names) {
  if (value.is_string()) {
    const auto it = names.find(value.get<std::string>());
    return it == names.end() ? value : json(it->second);
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& v : value) out.push_back(rename_strings(v, names));
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [key, v] : value.items()) {
      const auto it = names.find(key);
      out[it == names.end() ? key : it->second] = rename_strings(v, names);
    }
    return out;
  }
  return value;
}

}  // namespace

Result<std::string> make_r1_qwen_tokenizer_json(const std::string& npm_qwen3_tokenizer_json) {
  try {
    R1_ASSIGN_OR_RETURN(json root, parse(npm_qwen3_tokenizer_json, "the npm Qwen tokenizer.json"));
    for (const auto& [token, id] : root["model"]["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() >= kQwenFirstAddedId) {
        return invalid_argument("the npm Qwen tokenizer.json: vocab entry \"" + token +
                                "\" has an id that is not below " +
                                std::to_string(kQwenFirstAddedId));
      }
    }
    json added = json::array();
    for (const AddedEntry& e : kQwenAdded) {
      added.push_back(added_token_json(e.id, e.content, e.special));
    }
    root["added_tokens"] = std::move(added);
    return root.dump();
  } catch (const json::exception& e) {
    return invalid_argument(std::string("the npm Qwen tokenizer.json: ") + e.what());
  }
}

Result<std::string> make_r1_llama_tokenizer_json(const std::string& npm_llama_tokenizer_json) {
  try {
    R1_ASSIGN_OR_RETURN(json root, parse(npm_llama_tokenizer_json, "the npm Llama tokenizer.json"));
    if (!root.contains("added_tokens") || !root["added_tokens"].is_array()) {
      return invalid_argument("the npm Llama tokenizer.json has no added_tokens");
    }
    std::map<std::string, std::string> renames;
    for (const AddedEntry& e : kLlamaRenamed) {
      bool found = false;
      for (json& token : root["added_tokens"]) {
        if (token.value("id", -1) != e.id) continue;
        const std::string old_name = token.value("content", std::string());
        if (old_name != e.content) renames[old_name] = std::string(e.content);
        token["content"] = std::string(e.content);
        token["special"] = e.special;
        found = true;
      }
      if (!found) {
        return invalid_argument("the npm Llama tokenizer.json has no added token " +
                                std::to_string(e.id));
      }
    }
    if (root.contains("post_processor")) {
      root["post_processor"] = rename_strings(root["post_processor"], renames);
    }
    return root.dump();
  } catch (const json::exception& e) {
    return invalid_argument(std::string("the npm Llama tokenizer.json: ") + e.what());
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
