// The response cache on the request path: whole answers of deterministic
// requests (greedy, or an explicit seed), looked up before the engine is
// asked and stored after a whole answer.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "server/api/generation_job.h"
#include "server/http/http_server.h"

namespace r1 {

// Looks `job` up when it is cacheable: whole (not streamed) and
// deterministic. `body` is the request body as parsed (the key is taken from
// it). The client can opt out with Cache-Control: no-store (neither read nor
// write) or no-cache (run it again and refresh the entry). Returns the
// answer on a hit, re-dated, with a fresh id and charged like the original;
// on a miss leaves job.cache_key set so the answer is stored.
std::optional<HttpResponse> consult_cache(const GenerationRoutesContext& ctx, Job& job,
                                          const HttpRequest& req, const nlohmann::json& body);

// Stores a whole answer under job.cache_key (when set); a store that fails
// is counted, never fatal.
void store_answer(const GenerationRoutesContext& ctx, const Job& job, const CachedAnswer& answer);

}  // namespace r1
