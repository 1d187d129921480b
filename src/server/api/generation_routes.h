// POST /v1/chat/completions, /v1/completions and /predict: parse, format,
// tokenize, submit to the engine, and turn the engine's token events into
// OpenAI responses, streamed (SSE) or whole, with R1's reasoning split out.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "obs/access_log.h"
#include "obs/metrics.h"
#include "server/api/errors.h"
#include "server/api/openai_request.h"
#include "server/http/http_server.h"
#include "server/model_table.h"
#include "server/ops/response_cache.h"
#include "server/served_model.h"

namespace r1 {

struct GenerationRoutesContext {
  const ModelTable* models = nullptr;  // what requests are routed among
  Metrics* metrics = nullptr;
  AccessLog* access_log = nullptr;        // may be disabled
  std::atomic<int>* in_flight = nullptr;  // requests being generated (drain waits on it)
  ResponseCache* cache = nullptr;         // may be null (no response cache)
  // Set by the handler once it has chosen the version that serves the
  // request; `keep` holds it (and its engine) until the response, streamed
  // or whole, is done.
  const ServedModel* model = nullptr;
  std::shared_ptr<const ServedModel> keep;
};

// The version a request is served by: the one `routing.model` names (404
// when none is served, or the caller may not see it: req.allowed_models),
// the default model's when it names none. Sets ctx.model and ctx.keep.
std::optional<HttpResponse> choose_version(GenerationRoutesContext& ctx, const HttpRequest& req,
                                           const RequestRouting& routing);

HttpResponse handle_chat_completions(const GenerationRoutesContext& ctx, const HttpRequest& req);

// The prompt ids of a chat request: the model's template rendered, the
// client's strings tokenised as plain text (see
// ServedModel::special_tokens_in_messages).
Result<std::vector<int32_t>> encode_chat_prompt(const ServedModel& m,
                                                std::span<const ChatMessage> messages);
HttpResponse handle_completions(const GenerationRoutesContext& ctx, const HttpRequest& req);
// {"text": ...} -> {"response": answer, "reasoning": thinking}; the text is
// one user message, sampled with the model's defaults.
HttpResponse handle_predict(const GenerationRoutesContext& ctx, const HttpRequest& req);
// POST /tokenize: {"prompt": text, "add_special_tokens"?: bool} or
// {"messages": [...]} (the chat prompt they make, as vLLM) ->
// {"tokens", "count", "max_model_len"}.
HttpResponse handle_tokenize(const ServedModel& m, const HttpRequest& req);
// POST /detokenize: {"tokens": [ids]} -> {"prompt": text}.
HttpResponse handle_detokenize(const ServedModel& m, const HttpRequest& req);

// An OpenAI-shaped error response (Retry-After when the error carries one).
HttpResponse error_response(const ApiError& error);
// A JSON body with `status`: every route's non-error answer.
HttpResponse json_response(const nlohmann::json& body, int status = 200);

}  // namespace r1
