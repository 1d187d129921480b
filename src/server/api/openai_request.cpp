#include "server/api/openai_request.h"

#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace r1 {

namespace {

using json = nlohmann::json;

enum class Endpoint { kChat, kCompletions };

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();

// Keys each endpoint understands; anything else lands in ignored_fields.
const std::set<std::string, std::less<>>& known_keys(Endpoint endpoint) {
  static const std::set<std::string, std::less<>> kChat = {"model",
                                                           "messages",
                                                           "stream",
                                                           "stream_options",
                                                           "max_tokens",
                                                           "max_completion_tokens",
                                                           "temperature",
                                                           "top_p",
                                                           "top_k",
                                                           "min_p",
                                                           "presence_penalty",
                                                           "frequency_penalty",
                                                           "repetition_penalty",
                                                           "seed",
                                                           "stop",
                                                           "stop_token_ids",
                                                           "n",
                                                           "logprobs",
                                                           "top_logprobs",
                                                           "user",
                                                           "max_reasoning_tokens",
                                                           "priority",
                                                           "ignore_eos",
                                                           "min_tokens",
                                                           "logit_bias",
                                                           "response_format",
                                                           "tools",
                                                           "tool_choice",
                                                           "functions",
                                                           "function_call"};
  static const std::set<std::string, std::less<>> kCompletions = {"model",
                                                                  "prompt",
                                                                  "stream",
                                                                  "stream_options",
                                                                  "max_tokens",
                                                                  "temperature",
                                                                  "top_p",
                                                                  "top_k",
                                                                  "min_p",
                                                                  "presence_penalty",
                                                                  "frequency_penalty",
                                                                  "repetition_penalty",
                                                                  "seed",
                                                                  "stop",
                                                                  "stop_token_ids",
                                                                  "n",
                                                                  "logprobs",
                                                                  "user",
                                                                  "max_reasoning_tokens",
                                                                  "priority",
                                                                  "ignore_eos",
                                                                  "min_tokens",
                                                                  "logit_bias",
                                                                  "response_format",
                                                                  "echo",
                                                                  "suffix",
                                                                  "best_of"};
  return endpoint == Endpoint::kChat ? kChat : kCompletions;
}

// Keys accepted and not used: OpenAI's documented fields that do not change
// the text, and vLLM extensions of the same kind.
const std::set<std::string, std::less<>>& accepted_without_effect(Endpoint endpoint) {
  static const std::set<std::string, std::less<>> kChat = {
      // OpenAI
      "store", "metadata", "parallel_tool_calls", "service_tier", "prompt_cache_key",
      "safety_identifier", "reasoning_effort", "verbosity", "modalities",
      // vLLM
      "skip_special_tokens", "spaces_between_special_tokens", "chat_template_kwargs", "request_id"};
  static const std::set<std::string, std::less<>> kCompletions = {
      "skip_special_tokens", "spaces_between_special_tokens", "request_id"};
  return endpoint == Endpoint::kChat ? kChat : kCompletions;
}

std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

ApiError wrong_type(const std::string& param, std::string_view expected, const json& v) {
  return bad_request(param + " must be " + std::string(expected) + ", got " + json_type_name(v),
                     param);
}

// The integral value of a JSON number (5 or 5.0), if it has one in int64 range.
std::optional<int64_t> as_int64(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    // 2^63 is exactly representable; anything >= it is out of range.
    if (std::isfinite(d) && std::trunc(d) == d && d >= -9223372036854775808.0 &&
        d < 9223372036854775808.0) {
      return static_cast<int64_t>(d);
    }
  }
  return std::nullopt;
}

using MaybeError = std::optional<ApiError>;

// Each reader: the key absent or null leaves *out untouched.
MaybeError read_bool(const json& obj, const char* key, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return wrong_type(key, "a boolean", *it);
  *out = it->get<bool>();
  return std::nullopt;
}

MaybeError read_float(const json& obj, const char* key, float* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  *out = static_cast<float>(it->get<double>());
  return std::nullopt;
}

MaybeError check_int(const json& v, const std::string& param, int64_t lo, int64_t hi,
                     int64_t* out) {
  if (!v.is_number()) return wrong_type(param, "an integer", v);
  std::optional<int64_t> i = as_int64(v);
  if (!i) return bad_request(param + " must be an integer, got " + v.dump(), param);
  if (*i < lo || *i > hi) {
    std::string range = hi == kInt32Max && *i < lo
                            ? "at least " + std::to_string(lo)
                            : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return bad_request(param + " must be " + range + ", got " + std::to_string(*i), param);
  }
  *out = *i;
  return std::nullopt;
}

MaybeError read_int(const json& obj, const char* key, int64_t lo, int64_t hi,
                    std::optional<int64_t>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  int64_t value = 0;
  if (MaybeError e = check_int(*it, key, lo, hi, &value)) return e;
  *out = value;
  return std::nullopt;
}

MaybeError read_string(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return wrong_type(key, "a string", *it);
  *out = it->get<std::string>();
  return std::nullopt;
}

MaybeError read_seed(const json& obj, std::optional<uint64_t>* out) {
  auto it = obj.find("seed");
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return std::nullopt;
  }
  if (!it->is_number()) return wrong_type("seed", "an integer", *it);
  std::optional<int64_t> i = as_int64(*it);
  if (!i) return bad_request("seed must be an integer, got " + it->dump(), "seed");
  *out = static_cast<uint64_t>(*i);  // negative seeds keep their bits
  return std::nullopt;
}

MaybeError read_stop(const json& obj, const RequestLimits& limits, std::vector<std::string>* out) {
  auto it = obj.find("stop");
  if (it == obj.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> stops;
  if (it->is_string()) {
    stops.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > limits.max_stop) {
      return bad_request("stop may hold at most " + std::to_string(limits.max_stop) +
                             " strings, got " + std::to_string(it->size()),
                         "stop");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      const json& s = (*it)[i];
      if (!s.is_string()) return wrong_type("stop[" + std::to_string(i) + "]", "a string", s);
      stops.push_back(s.get<std::string>());
    }
  } else {
    return wrong_type("stop", "a string or an array of strings", *it);
  }
  for (std::string& s : stops) {
    if (s.size() > limits.max_stop_bytes) {
      return bad_request(
          "stop strings may be at most " + std::to_string(limits.max_stop_bytes) + " bytes long",
          "stop");
    }
    if (!s.empty()) out->push_back(std::move(s));
  }
  return std::nullopt;
}

MaybeError read_token_id(const json& v, const std::string& param, const RequestLimits& limits,
                         int32_t* out) {
  int64_t hi = limits.n_vocab > 0 ? limits.n_vocab - 1 : kInt32Max;
  if (!v.is_number()) return wrong_type(param, "a token id (integer)", v);
  int64_t id = 0;
  if (MaybeError e = check_int(v, param, 0, hi, &id)) {
    if (limits.n_vocab > 0) {
      e->message = param + " must be a token id in [0, " + std::to_string(limits.n_vocab) +
                   "), got " + v.dump();
    }
    return e;
  }
  *out = static_cast<int32_t>(id);
  return std::nullopt;
}

MaybeError read_stop_token_ids(const json& obj, const RequestLimits& limits,
                               std::vector<int32_t>* out) {
  auto it = obj.find("stop_token_ids");
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) return wrong_type("stop_token_ids", "an array of token ids", *it);
  if (it->size() > limits.max_stop_token_ids) {
    return bad_request(
        "stop_token_ids may hold at most " + std::to_string(limits.max_stop_token_ids) + " ids",
        "stop_token_ids");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    int32_t id = 0;
    if (MaybeError e =
            read_token_id((*it)[i], "stop_token_ids[" + std::to_string(i) + "]", limits, &id)) {
      return e;
    }
    out->push_back(id);
  }
  return std::nullopt;
}

// Fields that would change the output and are not implemented: refused.
MaybeError check_unsupported(const json& obj, Endpoint endpoint, int32_t n) {
  for (const char* key : {"tools", "functions"}) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) continue;
    if (!it->is_array()) return wrong_type(key, "an array", *it);
    if (!it->empty()) {
      return bad_request(std::string(key) + " (function calling) is not supported by this server",
                         key);
    }
  }
  for (const char* key : {"tool_choice", "function_call"}) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) continue;
    if (!(it->is_string() && (*it == "none" || *it == "auto"))) {
      return bad_request(std::string(key) +
                             " must be \"none\" or \"auto\": function calling is "
                             "not supported by this server",
                         key);
    }
  }
  if (auto it = obj.find("response_format"); it != obj.end() && !it->is_null()) {
    if (!it->is_object()) return wrong_type("response_format", "an object", *it);
    auto type = it->find("type");
    if (type == it->end() || !type->is_string()) {
      return bad_request("response_format.type must be a string", "response_format");
    }
    if (*type != "text") {
      return bad_request("response_format type \"" + type->get<std::string>() +
                             "\" is not supported; only \"text\"",
                         "response_format");
    }
  }
  if (auto it = obj.find("logit_bias"); it != obj.end() && !it->is_null()) {
    if (!it->is_object()) return wrong_type("logit_bias", "an object", *it);
    if (!it->empty()) return bad_request("logit_bias is not supported", "logit_bias");
  }
  if (endpoint == Endpoint::kCompletions) {
    bool echo = false;
    if (MaybeError e = read_bool(obj, "echo", &echo)) return e;
    if (echo) return bad_request("echo is not supported", "echo");
    std::string suffix;
    if (MaybeError e = read_string(obj, "suffix", &suffix)) return e;
    if (!suffix.empty()) return bad_request("suffix is not supported", "suffix");
    std::optional<int64_t> best_of;
    if (MaybeError e = read_int(obj, "best_of", 1, kInt32Max, &best_of)) return e;
    if (best_of && *best_of != n) {
      return bad_request("best_of other than n is not supported", "best_of");
    }
  }
  return std::nullopt;
}

// Maps r1::validate()'s message ("top_p must be in (0, 1], got 0") to its field.
ApiError sampling_error(const Status& status, Endpoint endpoint) {
  const std::string& message = status.message();
  std::string field = message.substr(0, message.find_first_of(" ("));
  if (field == "n_top_logprobs") field = endpoint == Endpoint::kChat ? "top_logprobs" : "logprobs";
  return bad_request(message, field);
}

MaybeError parse_common(const json& body, Endpoint endpoint, const GenerationConfig& defaults,
                        const RequestLimits& limits, GenerationOptions* out) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return bad_request("model is required", "model");
  }
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  out->model = model->get<std::string>();
  if (out->model.empty()) return bad_request("model must not be empty", "model");

  if (MaybeError e = read_bool(body, "stream", &out->stream)) return e;
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return wrong_type("stream_options", "an object", *it);
    if (!out->stream) {
      return bad_request("stream_options may only be given with stream: true", "stream_options");
    }
    auto usage = it->find("include_usage");
    if (usage != it->end() && !usage->is_null()) {
      if (!usage->is_boolean()) {
        return wrong_type("stream_options.include_usage", "a boolean", *usage);
      }
      out->include_usage = usage->get<bool>();
    }
  }

  std::optional<int64_t> max_tokens;
  if (MaybeError e = read_int(body, "max_tokens", 1, kInt32Max, &max_tokens)) return e;
  if (max_tokens) out->max_tokens_param = "max_tokens";
  if (endpoint == Endpoint::kChat) {
    std::optional<int64_t> max_completion;
    if (MaybeError e = read_int(body, "max_completion_tokens", 1, kInt32Max, &max_completion)) {
      return e;
    }
    if (max_completion) {
      max_tokens = max_completion;
      out->max_tokens_param = "max_completion_tokens";
    }
  }
  if (max_tokens) out->max_tokens = static_cast<int32_t>(*max_tokens);
  if (out->max_tokens_param.empty()) {
    out->max_tokens_param = endpoint == Endpoint::kChat ? "max_completion_tokens" : "max_tokens";
  }

  std::optional<int64_t> n;
  if (MaybeError e = read_int(body, "n", 1, limits.max_n, &n)) return e;
  if (n) out->n = static_cast<int32_t>(*n);

  // Sampling: generation_config defaults first, then what the request says.
  SamplingParams& sp = out->sampling;
  sp.temperature = static_cast<float>(defaults.temperature.value_or(1.0));
  sp.top_p = static_cast<float>(defaults.top_p.value_or(1.0));
  sp.top_k = static_cast<int32_t>(
      std::clamp<int64_t>(defaults.top_k.value_or(0), -1, std::numeric_limits<int32_t>::max()));
  sp.repetition_penalty = static_cast<float>(defaults.repetition_penalty.value_or(1.0));
  if (MaybeError e = read_float(body, "temperature", &sp.temperature)) return e;
  if (MaybeError e = read_float(body, "top_p", &sp.top_p)) return e;
  std::optional<int64_t> top_k;
  if (MaybeError e = read_int(body, "top_k", -1, kInt32Max, &top_k)) return e;
  if (top_k) sp.top_k = static_cast<int32_t>(*top_k);
  if (MaybeError e = read_float(body, "min_p", &sp.min_p)) return e;
  if (MaybeError e = read_float(body, "presence_penalty", &sp.presence_penalty)) return e;
  if (MaybeError e = read_float(body, "frequency_penalty", &sp.frequency_penalty)) return e;
  if (MaybeError e = read_float(body, "repetition_penalty", &sp.repetition_penalty)) return e;
  if (MaybeError e = read_seed(body, &sp.seed)) return e;

  if (endpoint == Endpoint::kChat) {
    if (MaybeError e = read_bool(body, "logprobs", &sp.logprobs)) return e;
    std::optional<int64_t> top;
    if (MaybeError e = read_int(body, "top_logprobs", 0, limits.max_chat_top_logprobs, &top)) {
      return e;
    }
    if (top && *top > 0 && !sp.logprobs) {
      return bad_request("top_logprobs needs logprobs: true", "top_logprobs");
    }
    if (top) sp.n_top_logprobs = static_cast<int32_t>(*top);
  } else {
    std::optional<int64_t> logprobs;
    if (MaybeError e = read_int(body, "logprobs", 0, limits.max_completion_logprobs, &logprobs)) {
      return e;
    }
    if (logprobs) {
      sp.logprobs = true;
      sp.n_top_logprobs = static_cast<int32_t>(*logprobs);
    }
  }
  Status valid = validate(sp);
  if (!valid.ok()) return sampling_error(valid, endpoint);

  if (MaybeError e = read_stop(body, limits, &out->stop)) return e;
  if (MaybeError e = read_stop_token_ids(body, limits, &out->stop_token_ids)) return e;
  if (MaybeError e = read_string(body, "user", &out->user)) return e;
  std::optional<int64_t> budget;
  if (MaybeError e = read_int(body, "max_reasoning_tokens", 0, kInt32Max, &budget)) return e;
  if (budget) out->max_reasoning_tokens = static_cast<int32_t>(*budget);
  std::optional<int64_t> priority;
  if (MaybeError e = read_int(body, "priority", kInt32Min, kInt32Max, &priority)) return e;
  if (priority) out->priority = static_cast<int32_t>(*priority);
  // vLLM's extensions for fixed output lengths (serving benchmarks send them).
  if (MaybeError e = read_bool(body, "ignore_eos", &out->ignore_eos)) return e;
  std::optional<int64_t> min_tokens;
  if (MaybeError e = read_int(body, "min_tokens", 0, kInt32Max, &min_tokens)) return e;
  if (min_tokens) {
    out->min_tokens = static_cast<int32_t>(*min_tokens);
    if (out->max_tokens && out->min_tokens > *out->max_tokens) {
      return bad_request("min_tokens (" + std::to_string(out->min_tokens) + ") must not exceed " +
                             out->max_tokens_param + " (" + std::to_string(*out->max_tokens) + ")",
                         "min_tokens");
    }
  }

  if (MaybeError e = check_unsupported(body, endpoint, out->n)) return e;

  const auto& known = known_keys(endpoint);
  for (const auto& item : body.items()) {
    if (known.contains(item.key())) continue;
    if (limits.reject_unknown_fields && !accepted_without_effect(endpoint).contains(item.key())) {
      return bad_request("Unrecognized request argument supplied: " + item.key(), item.key());
    }
    out->ignored_fields.push_back(item.key());
  }
  return std::nullopt;
}

MaybeError parse_content(const json& v, const std::string& param, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return std::nullopt;
  }
  if (!v.is_array()) return wrong_type(param, "a string or an array of content parts", v);
  std::string joined;
  for (size_t j = 0; j < v.size(); ++j) {
    const json& part = v[j];
    std::string part_param = param + "[" + std::to_string(j) + "]";
    if (!part.is_object()) return wrong_type(part_param, "an object", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) {
      return bad_request(part_param + ".type must be a string", part_param + ".type");
    }
    if (*type != "text") {
      return bad_request(
          part_param + ".type \"" + type->get<std::string>() + "\" is not supported; only \"text\"",
          part_param + ".type");
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      return bad_request(part_param + ".text must be a string", part_param + ".text");
    }
    if (j > 0) joined += '\n';
    joined += text->get<std::string>();
  }
  *out = std::move(joined);
  return std::nullopt;
}

MaybeError parse_tool_calls(const json& v, const std::string& param, std::vector<ToolCall>* out) {
  if (!v.is_array()) return wrong_type(param, "an array", v);
  for (size_t j = 0; j < v.size(); ++j) {
    const json& call = v[j];
    std::string call_param = param + "[" + std::to_string(j) + "]";
    if (!call.is_object()) return wrong_type(call_param, "an object", call);
    ToolCall tool_call;
    if (auto type = call.find("type"); type != call.end() && !type->is_null()) {
      if (!type->is_string() || *type != "function") {
        return bad_request(call_param + ".type must be \"function\"", call_param + ".type");
      }
    }
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) {
      return bad_request(call_param + ".function must be an object", call_param + ".function");
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string()) {
      return bad_request(call_param + ".function.name must be a string",
                         call_param + ".function.name");
    }
    tool_call.name = name->get<std::string>();
    if (auto args = function->find("arguments"); args != function->end() && !args->is_null()) {
      // OpenAI sends a JSON string; some clients send the object itself.
      tool_call.arguments = args->is_string() ? args->get<std::string>() : args->dump();
    }
    out->push_back(std::move(tool_call));
  }
  return std::nullopt;
}

MaybeError parse_messages(const json& body, std::vector<ChatMessage>* out) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) return bad_request("messages is required", "messages");
  if (!it->is_array()) return wrong_type("messages", "an array", *it);
  if (it->empty()) return bad_request("messages must contain at least one message", "messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return wrong_type(param, "an object", m);
    ChatMessage message;
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return bad_request(param + ".role must be a string", param + ".role");
    }
    message.role = role->get<std::string>();
    if (message.role == "developer") message.role = "system";
    if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
        message.role != "tool") {
      return bad_request(param +
                             ".role must be one of system, developer, user, assistant, "
                             "tool; got \"" +
                             role->get<std::string>() + "\"",
                         param + ".role");
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (message.role != "assistant") {
        return bad_request(param + ".content is required for role " + message.role,
                           param + ".content");
      }
    } else {
      std::string text;
      if (MaybeError e = parse_content(*content, param + ".content", &text)) return e;
      message.content = std::move(text);
    }
    if (auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
      if (message.role != "assistant") {
        return bad_request(param + ".tool_calls is only allowed in assistant messages",
                           param + ".tool_calls");
      }
      if (MaybeError e = parse_tool_calls(*calls, param + ".tool_calls", &message.tool_calls)) {
        return e;
      }
    }
    out->push_back(std::move(message));
  }
  return std::nullopt;
}

MaybeError parse_token_list(const json& v, const std::string& param, const RequestLimits& limits,
                            std::vector<int32_t>* out) {
  for (size_t i = 0; i < v.size(); ++i) {
    int32_t id = 0;
    if (MaybeError e = read_token_id(v[i], param + "[" + std::to_string(i) + "]", limits, &id)) {
      return e;
    }
    out->push_back(id);
  }
  return std::nullopt;
}

MaybeError parse_prompt(const json& body, const RequestLimits& limits, CompletionRequest* out) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return bad_request("prompt is required", "prompt");
  const json* prompt = &*it;
  std::string param = "prompt";
  if (prompt->is_array() && prompt->size() == 1 &&
      ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
    prompt = &(*prompt)[0];  // a one-element batch
    param = "prompt[0]";
  } else if (prompt->is_array() && prompt->size() > 1 &&
             ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
    return bad_request("several prompts in one request are not supported; send one prompt",
                       "prompt");
  }
  if (prompt->is_string()) {
    if (prompt->get_ref<const std::string&>().empty()) {
      return bad_request("prompt must not be empty", "prompt");
    }
    out->prompt_text = prompt->get<std::string>();
    return std::nullopt;
  }
  if (!prompt->is_array()) {
    return wrong_type(param, "a string or an array of token ids", *prompt);
  }
  if (prompt->empty()) return bad_request("prompt must not be empty", "prompt");
  return parse_token_list(*prompt, param, limits, &out->prompt_token_ids);
}

}  // namespace

// Parses `text` as a JSON object; nlohmann's exceptions stop here.
ApiResult<json> parse_request_body(std::string_view text) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    return bad_request(std::string("the request body is not valid JSON: ") + e.what());
  } catch (const std::exception& e) {
    return bad_request(std::string("the request body could not be parsed: ") + e.what());
  }
  if (!body.is_object()) {
    return bad_request("the request body must be a JSON object, got " + json_type_name(body));
  }
  return body;
}

RequestRouting routing_of(const json& body) {
  RequestRouting r;
  if (!body.is_object()) return r;
  if (const auto m = body.find("model"); m != body.end() && m->is_string()) {
    r.model = m->get<std::string>();
  }
  if (const auto u = body.find("user"); u != body.end() && u->is_string()) {
    r.user = u->get<std::string>();
  }
  return r;
}

ApiResult<ChatCompletionRequest> parse_chat_completion_request(std::string_view text,
                                                               const GenerationConfig& defaults,
                                                               const RequestLimits& limits) {
  ApiResult<json> body = parse_request_body(text);
  if (!body.ok()) return body.error();
  return chat_completion_request_from(*body, defaults, limits);
}

ApiResult<ChatCompletionRequest> chat_completion_request_from(const json& body,
                                                              const GenerationConfig& defaults,
                                                              const RequestLimits& limits) {
  try {
    if (!body.is_object()) {
      return bad_request("the request body must be a JSON object, got " + json_type_name(body));
    }
    ChatCompletionRequest request;
    if (MaybeError e = parse_common(body, Endpoint::kChat, defaults, limits, &request.options)) {
      return *e;
    }
    if (MaybeError e = parse_messages(body, &request.messages)) return *e;
    return request;
  } catch (const std::exception& e) {
    // Every access above is type-checked first; reaching this is a bug.
    return internal(std::string("request parsing failed: ") + e.what());
  }
}

ApiResult<CompletionRequest> parse_completion_request(std::string_view text,
                                                      const GenerationConfig& defaults,
                                                      const RequestLimits& limits) {
  ApiResult<json> body = parse_request_body(text);
  if (!body.ok()) return body.error();
  return completion_request_from(*body, defaults, limits);
}

ApiResult<CompletionRequest> completion_request_from(const json& body,
                                                     const GenerationConfig& defaults,
                                                     const RequestLimits& limits) {
  try {
    if (!body.is_object()) {
      return bad_request("the request body must be a JSON object, got " + json_type_name(body));
    }
    CompletionRequest request;
    if (MaybeError e =
            parse_common(body, Endpoint::kCompletions, defaults, limits, &request.options)) {
      return *e;
    }
    if (MaybeError e = parse_prompt(body, limits, &request)) return *e;
    return request;
  } catch (const std::exception& e) {
    return internal(std::string("request parsing failed: ") + e.what());
  }
}

ApiResult<int32_t> resolve_max_tokens(int64_t n_prompt_tokens, std::optional<int32_t> max_tokens,
                                      int64_t context_len, std::string_view max_tokens_param) {
  if (n_prompt_tokens >= context_len) return prompt_too_long(n_prompt_tokens, context_len);
  int64_t room = context_len - n_prompt_tokens;
  if (!max_tokens) return static_cast<int32_t>(std::min<int64_t>(room, kInt32Max));
  if (*max_tokens > room) {
    std::string param(max_tokens_param);
    return bad_request("This model's maximum context length is " + std::to_string(context_len) +
                           " tokens. However, you requested " +
                           std::to_string(n_prompt_tokens + *max_tokens) + " tokens (" +
                           std::to_string(n_prompt_tokens) + " in the prompt, " +
                           std::to_string(*max_tokens) + " for the completion). Reduce " + param +
                           " or the prompt.",
                       param, "context_length_exceeded");
  }
  return *max_tokens;
}

}  // namespace r1
