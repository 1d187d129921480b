// What the route guard knows about a call and hands to the guarded handler:
// who is calling, which models it may see, and where its usage goes. The
// transport's HttpRequest carries only what came over the wire.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/http/http_server.h"

namespace r1 {

// What a generation has used so far; reported cumulatively.
struct CallUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // reasoning included
  int64_t reasoning_tokens = 0;
  bool cache_hit = false;  // answered from the response cache
  std::string model;       // the model and loaded version that served the call
  std::string version;
};

struct CallContext {
  std::string principal;  // the caller's id; "" when the server has no authentication
  std::vector<std::string> allowed_models;  // the models the caller may see (empty: all)
  // Set for an accounted caller: told the call's usage so far (cumulative)
  // as tokens are generated and once more at the end (rate-limit budget,
  // usage ledger, audit record).
  std::function<void(const CallUsage&)> on_usage;
  // Set when the audit trail records prompts: given an inference request's
  // body once the handler has parsed it (the body is parsed once).
  std::function<void(const nlohmann::json& body)> on_body;
  // Told the request id of the generation the call resumes (the audit
  // record becomes a "resume" event).
  std::function<void(const std::string& request_id)> on_resume;
  // Set for an accounted caller: told that the call's usage is final. The
  // ledger line and audit record are written then, so a stream calls it
  // before its last event: a client that has read the end of an answer finds
  // it counted. Without the call they are written when the response is done.
  std::function<void()> on_settle;

  void usage(const CallUsage& u) const {
    if (on_usage) on_usage(u);
  }
  void body(const nlohmann::json& b) const {
    if (on_body) on_body(b);
  }
  void resumes(const std::string& request_id) const {
    if (on_resume) on_resume(request_id);
  }
  void settle() const {
    if (on_settle) on_settle();
  }
};

// A route behind the guard: the request and what the guard learnt of its caller.
using GuardedHandler = std::function<HttpResponse(const HttpRequest&, const CallContext&)>;

}  // namespace r1
