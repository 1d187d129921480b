// JSON bodies of OpenAI responses: chat.completion and chat.completion.chunk,
// text_completion (whole and streamed), usage, the /v1/models list, and SSE
// framing. Shapes follow OpenAI's API reference so that the official clients
// parse them; R1's thinking travels in `reasoning_content` next to `content`,
// as DeepSeek's own API and vLLM's deepseek_r1 parser send it.
//
// Text fields hold the raw bytes the model produced; serialisation replaces
// invalid UTF-8 (a token that is half of a character, in logprobs) with U+FFFD
// instead of failing, and the `bytes` arrays keep the exact bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace r1 {

enum class FinishReason { kStop, kLength };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length"

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // all generated tokens, reasoning included
  int64_t reasoning_tokens = 0;   // completion_tokens_details.reasoning_tokens
};
// {"prompt_tokens", "completion_tokens", "total_tokens",
//  "completion_tokens_details": {"reasoning_tokens"}}
nlohmann::json usage_json(const Usage& usage);

// One sampled token with its logprob and the alternatives asked for.
struct LogprobAlternative {
  std::string token;  // raw bytes of the token
  float logprob = 0.0f;
};
struct LogprobEntry {
  std::string token;  // raw bytes of the token
  float logprob = 0.0f;
  std::vector<LogprobAlternative> top;  // most likely first
};

// Chat shape: {"content": [{"token", "logprob", "bytes", "top_logprobs":
// [{"token", "logprob", "bytes"}]}], "refusal": null}. Non-finite logprobs
// are written as -9999.0, as OpenAI does.
nlohmann::json chat_logprobs_json(std::span<const LogprobEntry> entries);

// Legacy completions shape: {"tokens", "token_logprobs", "top_logprobs":
// [{token: logprob}], "text_offset"}; offsets count bytes from
// `first_text_offset` (the length of the text before these tokens).
nlohmann::json completion_logprobs_json(std::span<const LogprobEntry> entries,
                                        int64_t first_text_offset);

// Identity shared by every chunk of one response.
struct ResponseHeader {
  std::string id;       // make_response_id("chatcmpl") / make_response_id("cmpl")
  int64_t created = 0;  // unix seconds
  std::string model;
};

// --- chat ---

struct ChatChoice {
  int32_t index = 0;
  std::optional<std::string> content;            // null when the model wrote no answer
  std::optional<std::string> reasoning_content;  // null when there was no thinking
  FinishReason finish_reason = FinishReason::kStop;
  std::optional<std::vector<LogprobEntry>> logprobs;  // null unless asked for
};
// {"id", "object": "chat.completion", "created", "model", "choices": [{"index",
//  "message": {"role": "assistant", "content", "reasoning_content"},
//  "logprobs", "finish_reason"}], "usage"}
nlohmann::json chat_completion_json(const ResponseHeader& header,
                                    std::span<const ChatChoice> choices, const Usage& usage);

struct ChatChunkChoice {
  int32_t index = 0;
  bool role = false;  // first chunk of the choice: delta carries "role": "assistant"
  std::optional<std::string> content;
  std::optional<std::string> reasoning_content;
  std::optional<FinishReason> finish_reason;  // last chunk of the choice
  std::optional<std::vector<LogprobEntry>> logprobs;
};
// {"id", "object": "chat.completion.chunk", "created", "model", "choices":
//  [{"index", "delta": {...only the parts set...}, "logprobs", "finish_reason"}]}.
// With include_usage the chunk also carries "usage": null (OpenAI sends usage
// only in the final chunk, null before it).
nlohmann::json chat_chunk_json(const ResponseHeader& header,
                               std::span<const ChatChunkChoice> choices, bool include_usage);
// The last chunk when include_usage: "choices": [] and the usage.
nlohmann::json chat_usage_chunk_json(const ResponseHeader& header, const Usage& usage);

// --- completions ---

struct CompletionChoice {
  int32_t index = 0;
  std::string text;
  std::optional<FinishReason> finish_reason;  // null in chunks before the last
  std::optional<std::vector<LogprobEntry>> logprobs;
  int64_t text_offset = 0;  // bytes of this choice's text before `text` (streaming)
};
// {"id", "object": "text_completion", "created", "model", "choices": [{"index",
//  "text", "logprobs", "finish_reason"}], "usage"}. Chunks have the same shape
// and no "usage" key (or "usage": null when include_usage).
nlohmann::json completion_json(const ResponseHeader& header,
                               std::span<const CompletionChoice> choices, const Usage& usage);
nlohmann::json completion_chunk_json(const ResponseHeader& header,
                                     std::span<const CompletionChoice> choices, bool include_usage);
nlohmann::json completion_usage_chunk_json(const ResponseHeader& header, const Usage& usage);

// --- models ---

struct ModelCard {
  std::string id;
  int64_t created = 0;
  std::string owned_by = "r1serve";
  std::optional<int64_t> max_model_len;  // vLLM's extra field, when known
  std::string root;                      // vLLM's extra field: the model an alias card stands for
  std::string version;                   // the registry version served under this id
};
// {"object": "list", "data": [{"id", "object": "model", "created", "owned_by",
// "max_model_len"?, "root"?, "version"?}]}
nlohmann::json model_list_json(std::span<const ModelCard> models);

// --- ids, time, SSE ---

// "<prefix>-" followed by 24 random alphanumerics, e.g. "chatcmpl-3kF9...".
// Thread-safe.
std::string make_response_id(std::string_view prefix);
int64_t unix_time_now();

// JSON text that never throws (invalid UTF-8 replaced).
std::string to_json_text(const nlohmann::json& value);
// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& value);
// The same with an SSE id ("id: ID"), which a client that reconnects sends
// back as Last-Event-ID.
std::string sse_event(const nlohmann::json& value, const std::string& id);
// "data: [DONE]\n\n"
std::string sse_done();

}  // namespace r1
