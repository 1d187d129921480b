#include "engine/request.h"

#include <utility>

#include "core/check.h"

namespace r1 {

bool is_finished(RequestStatus status) {
  return status == RequestStatus::kFinishedStopped || status == RequestStatus::kFinishedLength ||
         status == RequestStatus::kFinishedAborted;
}

std::string_view request_status_name(RequestStatus status) {
  switch (status) {
    case RequestStatus::kWaiting:
      return "WAITING";
    case RequestStatus::kRunning:
      return "RUNNING";
    case RequestStatus::kPreempted:
      return "PREEMPTED";
    case RequestStatus::kFinishedStopped:
      return "FINISHED_STOPPED";
    case RequestStatus::kFinishedLength:
      return "FINISHED_LENGTH";
    case RequestStatus::kFinishedAborted:
      return "FINISHED_ABORTED";
  }
  return "UNKNOWN";
}

Request::Request(RequestSpec spec, int64_t arrival_order)
    : id(std::move(spec.id)),
      sampling(spec.sampling),
      max_tokens(spec.max_tokens),
      stop_ids(std::move(spec.stop_ids)),
      priority(spec.priority),
      prompt_logprobs(spec.prompt_logprobs),
      arrival(arrival_order),
      tokens(std::move(spec.prompt)),
      n_prompt_tokens(static_cast<int32_t>(tokens.size())) {
  R1_CHECK(n_prompt_tokens > 0);
  tokens.reserve(tokens.size() + static_cast<size_t>(max_tokens));
  tokens.insert(tokens.end(), spec.output.begin(), spec.output.end());
}

}  // namespace r1
