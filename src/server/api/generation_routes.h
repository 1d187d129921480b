// The route handlers of POST /v1/chat/completions, /v1/completions,
// /predict, /tokenize and /detokenize: each parses the body once, chooses
// the version that serves it, and hands the job on (engine_submission.h,
// cached_answers.h, responders.h, call_accounting.h).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "server/api/errors.h"
#include "server/api/generation_job.h"
#include "server/api/openai_request.h"
#include "server/call_context.h"
#include "server/http/http_server.h"
#include "server/served_model.h"

namespace r1 {

// The version a request is served by: the one `routing.model` names (404
// when none is served, or the caller may not see it: call.allowed_models),
// the default model's when it names none. Sets ctx.model and ctx.keep.
std::optional<HttpResponse> choose_version(GenerationRoutesContext& ctx, const HttpRequest& req,
                                           const CallContext& call, const RequestRouting& routing);

// The prompt ids of a chat request: the model's template rendered, the
// client's strings tokenised as plain text (see
// ServedModel::special_tokens_in_messages).
Result<std::vector<int32_t>> encode_chat_prompt(const ServedModel& m,
                                                std::span<const ChatMessage> messages);

HttpResponse handle_chat_completions(const GenerationRoutesContext& ctx, const HttpRequest& req,
                                     const CallContext& call = {});
HttpResponse handle_completions(const GenerationRoutesContext& ctx, const HttpRequest& req,
                                const CallContext& call = {});
// {"text": ...} -> {"response": answer, "reasoning": thinking}; the text is
// one user message, sampled with the model's defaults.
HttpResponse handle_predict(const GenerationRoutesContext& ctx, const HttpRequest& req,
                            const CallContext& call = {});
// POST /tokenize: {"prompt": text, "add_special_tokens"?: bool} or
// {"messages": [...]} (the chat prompt they make, as vLLM) ->
// {"tokens", "count", "max_model_len"}.
HttpResponse handle_tokenize(const GenerationRoutesContext& ctx, const HttpRequest& req,
                             const CallContext& call = {});
// POST /detokenize: {"tokens": [ids]} -> {"prompt": text}.
HttpResponse handle_detokenize(const GenerationRoutesContext& ctx, const HttpRequest& req,
                               const CallContext& call = {});

}  // namespace r1
