#include "server/api/reasoning_token_counter.h"

namespace r1 {

ReasoningTokenCounter::ReasoningTokenCounter(bool starts_in_reasoning,
                                             std::optional<int32_t> think_start_id,
                                             std::optional<int32_t> think_end_id)
    : think_start_id_(think_start_id),
      think_end_id_(think_end_id),
      in_reasoning_(starts_in_reasoning) {}

bool ReasoningTokenCounter::push(int32_t id) {
  if (first_) {
    first_ = false;
    if (think_start_id_ && id == *think_start_id_) in_reasoning_ = true;
  }
  if (!in_reasoning_) return false;
  ++n_reasoning_;
  if (think_end_id_ && id == *think_end_id_) in_reasoning_ = false;
  return true;
}

}  // namespace r1
