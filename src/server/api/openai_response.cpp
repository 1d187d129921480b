#include "server/api/openai_response.h"

#include <chrono>
#include <cmath>
#include <random>

namespace r1 {

namespace {

using json = nlohmann::json;

// OpenAI reports tokens outside the distribution as -9999.0; JSON has no -inf.
double finite_logprob(float logprob) {
  return std::isfinite(logprob) ? logprob : -9999.0;
}

json bytes_json(std::string_view token) {
  json bytes = json::array();
  for (char c : token) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return bytes;
}

json header_json(const ResponseHeader& header, std::string_view object) {
  return json{
      {"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

json optional_string(const std::optional<std::string>& s) {
  return s ? json(*s) : json(nullptr);
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
  }
  return "stop";
}

json usage_json(const Usage& usage) {
  return json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"completion_tokens_details", {{"reasoning_tokens", usage.reasoning_tokens}}}};
}

json chat_logprobs_json(std::span<const LogprobEntry> entries) {
  json content = json::array();
  for (const LogprobEntry& entry : entries) {
    json top = json::array();
    for (const LogprobAlternative& alt : entry.top) {
      top.push_back(json{{"token", alt.token},
                         {"logprob", finite_logprob(alt.logprob)},
                         {"bytes", bytes_json(alt.token)}});
    }
    content.push_back(json{{"token", entry.token},
                           {"logprob", finite_logprob(entry.logprob)},
                           {"bytes", bytes_json(entry.token)},
                           {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs_json(std::span<const LogprobEntry> entries, int64_t first_text_offset) {
  json tokens = json::array();
  json token_logprobs = json::array();
  json top_logprobs = json::array();
  json text_offset = json::array();
  int64_t offset = first_text_offset;
  for (const LogprobEntry& entry : entries) {
    tokens.push_back(entry.token);
    token_logprobs.push_back(finite_logprob(entry.logprob));
    json top = json::object();
    for (const LogprobAlternative& alt : entry.top) {
      // Two alternatives that decode to the same text (U+FFFD for partial
      // characters) share a key; the more likely one, listed first, stays.
      std::string key = json(alt.token).dump(-1, ' ', false, json::error_handler_t::replace);
      json key_text = json::parse(key);
      if (!top.contains(key_text.get<std::string>())) {
        top[key_text.get<std::string>()] = finite_logprob(alt.logprob);
      }
    }
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    offset += static_cast<int64_t>(entry.token.size());
  }
  return json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(token_logprobs)},
              {"top_logprobs", std::move(top_logprobs)},
              {"text_offset", std::move(text_offset)}};
}

json chat_completion_json(const ResponseHeader& header, std::span<const ChatChoice> choices,
                          const Usage& usage) {
  json out = header_json(header, "chat.completion");
  json list = json::array();
  for (const ChatChoice& choice : choices) {
    json message{{"role", "assistant"},
                 {"content", optional_string(choice.content)},
                 {"reasoning_content", optional_string(choice.reasoning_content)}};
    list.push_back(
        json{{"index", choice.index},
             {"message", std::move(message)},
             {"logprobs", choice.logprobs ? chat_logprobs_json(*choice.logprobs) : json(nullptr)},
             {"finish_reason", finish_reason_name(choice.finish_reason)}});
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

json chat_chunk_json(const ResponseHeader& header, std::span<const ChatChunkChoice> choices,
                     bool include_usage) {
  json out = header_json(header, "chat.completion.chunk");
  json list = json::array();
  for (const ChatChunkChoice& choice : choices) {
    json delta = json::object();
    if (choice.role) delta["role"] = "assistant";
    if (choice.reasoning_content) delta["reasoning_content"] = *choice.reasoning_content;
    if (choice.content) delta["content"] = *choice.content;
    list.push_back(json{
        {"index", choice.index},
        {"delta", std::move(delta)},
        {"logprobs", choice.logprobs ? chat_logprobs_json(*choice.logprobs) : json(nullptr)},
        {"finish_reason",
         choice.finish_reason ? json(finish_reason_name(*choice.finish_reason)) : json(nullptr)}});
  }
  out["choices"] = std::move(list);
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json chat_usage_chunk_json(const ResponseHeader& header, const Usage& usage) {
  json out = header_json(header, "chat.completion.chunk");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

namespace {

json completion_choices_json(std::span<const CompletionChoice> choices) {
  json list = json::array();
  for (const CompletionChoice& choice : choices) {
    list.push_back(json{
        {"index", choice.index},
        {"text", choice.text},
        {"logprobs", choice.logprobs
                         ? completion_logprobs_json(*choice.logprobs, choice.text_offset)
                         : json(nullptr)},
        {"finish_reason",
         choice.finish_reason ? json(finish_reason_name(*choice.finish_reason)) : json(nullptr)}});
  }
  return list;
}

}  // namespace

json completion_json(const ResponseHeader& header, std::span<const CompletionChoice> choices,
                     const Usage& usage) {
  json out = header_json(header, "text_completion");
  out["choices"] = completion_choices_json(choices);
  out["usage"] = usage_json(usage);
  return out;
}

json completion_chunk_json(const ResponseHeader& header, std::span<const CompletionChoice> choices,
                           bool include_usage) {
  json out = header_json(header, "text_completion");
  out["choices"] = completion_choices_json(choices);
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json completion_usage_chunk_json(const ResponseHeader& header, const Usage& usage) {
  json out = header_json(header, "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

json model_list_json(std::span<const ModelCard> models) {
  json data = json::array();
  for (const ModelCard& model : models) {
    json card{{"id", model.id},
              {"object", "model"},
              {"created", model.created},
              {"owned_by", model.owned_by}};
    if (model.max_model_len) card["max_model_len"] = *model.max_model_len;
    if (!model.root.empty()) card["root"] = model.root;
    if (!model.version.empty()) card["version"] = model.version;
    data.push_back(std::move(card));
  }
  return json{{"object", "list"}, {"data", std::move(data)}};
}

std::string make_response_id(std::string_view prefix) {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng([] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }());
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::string id(prefix);
  id += '-';
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string to_json_text(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& value) {
  return "data: " + to_json_text(value) + "\n\n";
}

std::string sse_event(const json& value, const std::string& id) {
  return "id: " + id + "\ndata: " + to_json_text(value) + "\n\n";
}

std::string sse_done() {
  return "data: [DONE]\n\n";
}

}  // namespace r1
