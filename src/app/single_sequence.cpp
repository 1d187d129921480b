#include "app/single_sequence.h"

namespace r1 {

SingleSequenceStep::SingleSequenceStep(std::vector<int32_t> tokens, int32_t first,
                                       int32_t block_size, bool all_logits)
    : ids_(std::move(tokens)) {
  const int32_t n = static_cast<int32_t>(ids_.size());
  for (int32_t i = 0; i < n; ++i) {
    positions_.push_back(first + i);
    slots_.push_back(first + i);
    if (all_logits) logit_rows_.push_back(i);
  }
  if (!all_logits) logit_rows_.push_back(n - 1);
  query_start_ = {0, n};
  const int32_t n_blocks = (first + n + block_size - 1) / block_size;
  for (int32_t b = 0; b < n_blocks; ++b) table_.push_back(b);
}

ForwardBatch SingleSequenceStep::batch() const {
  return ForwardBatch{ids_,         positions_, slots_,
                      query_start_, table_,     static_cast<int32_t>(table_.size()),
                      logit_rows_};
}

}  // namespace r1
