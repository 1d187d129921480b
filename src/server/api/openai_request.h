// Parsing and validation of the OpenAI request bodies of
// POST /v1/chat/completions and POST /v1/completions into plain structs and an
// engine SamplingParams. Every refusal is a 400 ApiError whose `param` names
// the field ("messages[2].role", "stop", "temperature").
//
// Choices where OpenAI and vLLM differ or are silent (docs/API.md repeats them):
//   - Top-level fields come in three kinds. Those r1serve implements. Those
//     that OpenAI documents (store, metadata, service_tier, ...) or that vLLM
//     adds (skip_special_tokens, chat_template_kwargs, ...) and that do not
//     change the text r1serve produces: accepted, not used, and returned in
//     `ignored_fields` so the route can log them (vLLM logs a warning). Any
//     other key is refused with 400 "Unrecognized request argument supplied",
//     as OpenAI does (the issue asks for errors where OpenAI gives them);
//     RequestLimits::reject_unknown_fields = false ignores them instead, as
//     vLLM does.
//   - Known fields that would change the output and that r1serve does not
//     implement are refused instead of silently dropped: a non-empty `tools`
//     or `functions`, `tool_choice` other than "none"/"auto" (without tools),
//     `response_format` other than {"type": "text"}, a non-empty `logit_bias`,
//     `echo: true`, a non-empty `suffix`, `best_of` other than n.
//   - null means "not given" for every optional field, as in OpenAI.
//   - Omitted sampling parameters take the model's generation_config.json
//     values (temperature, top_p, top_k, repetition_penalty), else OpenAI's
//     defaults (temperature 1, top_p 1); `do_sample` is ignored, as in vLLM.
//   - Integer fields accept a JSON number with an integral value (5.0), as
//     vLLM's pydantic models do; booleans must be JSON booleans.
//   - `stop`: a string or a list of up to RequestLimits::max_stop strings
//     (OpenAI allows 4, vLLM any number); empty strings are dropped.
//   - `n`: 1..RequestLimits::max_n (16).
//   - max_completion_tokens wins over max_tokens when both are given (vLLM).
//   - Chat `logprobs` is a bool and `top_logprobs` 0..20 needs logprobs true;
//     completions `logprobs` is an int 0..5 (OpenAI legacy): the chosen token
//     plus that many alternatives.
//   - Message content: a string, or a list of {"type": "text", "text": ...}
//     parts joined with "\n" (vLLM); other part types are refused. null or
//     missing content only for assistant messages. Role "developer" is taken
//     as "system". `name`, `tool_call_id` and `reasoning_content` of history
//     messages are accepted and not used (the template drops past thinking).
//   - Completions `prompt`: a string, a list of token ids, or a one-element
//     list of either; several prompts in one request are refused (vLLM batches
//     them; r1serve does not yet). An empty prompt is refused.
//   - `stream_options` only with `stream: true` (vLLM).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "format/model_config.h"
#include "server/api/errors.h"
#include "tokenizer/chat_template.h"

namespace r1 {

struct RequestLimits {
  int32_t max_n = 16;
  size_t max_stop = 16;          // stop strings per request
  size_t max_stop_bytes = 1024;  // bytes per stop string
  size_t max_stop_token_ids = 64;
  int32_t max_chat_top_logprobs = 20;
  int32_t max_completion_logprobs = 5;
  // Prompt token ids must be below this; 0 = only checked for >= 0.
  int32_t n_vocab = 0;
  // Unrecognised top-level keys: 400 (OpenAI) when true, ignored (vLLM) when false.
  bool reject_unknown_fields = true;
};

// Fields shared by both endpoints.
struct GenerationOptions {
  std::string model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // max_completion_tokens or max_tokens; empty = up to the context length.
  std::optional<int32_t> max_tokens;
  std::string max_tokens_param;         // which of the two the client used (for errors)
  SamplingParams sampling;              // validated
  std::vector<std::string> stop;        // non-empty strings
  std::vector<int32_t> stop_token_ids;  // vLLM extension
  int32_t n = 1;
  std::string user;
  // r1serve extension: close the thinking after this many tokens; empty = the
  // server default.
  std::optional<int32_t> max_reasoning_tokens;
  int32_t priority = 0;  // vLLM extension: lower runs earlier
  // vLLM extensions: generate past the model's end-of-sequence ids (the
  // request's stop_token_ids and stop strings still apply), and at least
  // min_tokens tokens before any stop id or stop string can end it.
  bool ignore_eos = false;
  int32_t min_tokens = 0;
  std::vector<std::string> ignored_fields;  // accepted keys without effect, sorted
};

struct ChatCompletionRequest {
  GenerationOptions options;
  std::vector<ChatMessage> messages;  // non-empty; roles system/user/assistant/tool
};

struct CompletionRequest {
  GenerationOptions options;
  // Exactly one of the two is set: text to tokenize, or ids as given.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_token_ids;
};

// What picks the version that serves a request: the top-level "model" and
// "user" strings. Fields that are absent or not strings stay empty.
struct RequestRouting {
  std::optional<std::string> model;
  std::string user;
};
RequestRouting routing_of(const nlohmann::json& body);

// The body as a JSON object: 400 for malformed JSON or another value.
ApiResult<nlohmann::json> parse_request_body(std::string_view text);

// Parses a request body. Malformed JSON, a body that is not an object, wrong
// types and out-of-range values are 400 with `param` set where a field is at
// fault. `model` is required (400 when missing); whether it exists is the
// caller's check (404). Never throws. The routes parse the text once
// (parse_request_body), choose the version from it, and validate the
// document with that version's defaults.
ApiResult<ChatCompletionRequest> parse_chat_completion_request(std::string_view body,
                                                               const GenerationConfig& defaults,
                                                               const RequestLimits& limits = {});
ApiResult<ChatCompletionRequest> chat_completion_request_from(const nlohmann::json& body,
                                                              const GenerationConfig& defaults,
                                                              const RequestLimits& limits = {});
ApiResult<CompletionRequest> parse_completion_request(std::string_view body,
                                                      const GenerationConfig& defaults,
                                                      const RequestLimits& limits = {});
ApiResult<CompletionRequest> completion_request_from(const nlohmann::json& body,
                                                     const GenerationConfig& defaults,
                                                     const RequestLimits& limits = {});

// The number of tokens a request may generate once its prompt is tokenized:
// 413 prompt_too_long when the prompt leaves no room in the context, 400 on
// `max_tokens_param` when prompt + max_tokens exceed it; with no max_tokens,
// the rest of the context.
ApiResult<int32_t> resolve_max_tokens(int64_t n_prompt_tokens, std::optional<int32_t> max_tokens,
                                      int64_t context_len,
                                      std::string_view max_tokens_param = "max_tokens");

}  // namespace r1
