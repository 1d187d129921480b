// A generation in flight as a checkpoint keeps it, so that another replica
// can resume it: what was asked (the request's digest, the prompt ids, the
// seed of its generator), what the model produced so far (the output ids,
// which of them the engine forced, their logprobs when asked for), what the
// client has been sent, and what usage earlier replicas have counted. The
// detokenizer, stop-string, reasoning-split and reasoning-budget state are
// not stored: they are functions of the output, rebuilt by replaying it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "engine/request_stream.h"  // SampledToken

namespace r1 {

struct Checkpoint {
  std::string request_id;  // the id the generation is resumed by
  std::string principal;   // who started it; no one else may resume it
  std::string route;       // "/v1/chat/completions", "/v1/completions" or "/predict"
  std::string digest;      // of the request body (ResponseCache::key_for)
  std::string model;       // the loaded version that produced the output
  std::string version;
  std::string response_id;  // the response's "id" and "created", kept across replicas
  int64_t created = 0;
  std::vector<int32_t> prompt;
  uint64_t seed = 0;  // the generator's seed
  std::vector<SampledToken> output;
  std::vector<int32_t> forced;  // ascending indices into output
  int64_t sent = 0;             // output tokens whose text the client has been sent
  // Usage the ledgers of earlier replicas count for this generation.
  int64_t counted_prompt_tokens = 0;
  int64_t counted_completion_tokens = 0;
  int64_t counted_reasoning_tokens = 0;

  nlohmann::json to_json() const;
  // DATA_LOSS for a value that is not a checkpoint (another writer, damage).
  static Result<Checkpoint> from_json(const nlohmann::json& j);
};

// The store key of `request_id` started by `principal`: one principal
// cannot name another's checkpoint.
std::string checkpoint_key(const std::string& principal, const std::string& request_id);

// What a client's resumption names: Last-Event-ID "REQUEST_ID:N" (the SSE
// id of the last event it got; N output tokens) or X-R1serve-Resume
// "REQUEST_ID" (N unknown: what the checkpoint says was sent).
struct ResumeTarget {
  std::string request_id;
  std::optional<int64_t> client_has;
};
// From the request's headers; nullopt when it resumes nothing; an error for
// a malformed header.
Result<std::optional<ResumeTarget>> resume_target(const std::string& last_event_id,
                                                  const std::string& resume_header);

// The SSE id of an event that brings the client to `n_tokens` output tokens.
std::string sse_event_id(const std::string& request_id, int64_t n_tokens);

}  // namespace r1
