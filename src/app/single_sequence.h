// A ForwardBatch for one sequence laid out in KV blocks 0, 1, 2, ... (block b
// holds positions [b * block_size, (b + 1) * block_size)): the offline tools
// (bench --offline, perplexity) drive a backend directly with it.
#pragma once

#include <cstdint>
#include <vector>

#include "model/forward_batch.h"

namespace r1 {

class SingleSequenceStep {
 public:
  // tokens at positions [first, first + tokens.size()); logits for the last
  // token, or for every token when `all_logits`.
  SingleSequenceStep(std::vector<int32_t> tokens, int32_t first, int32_t block_size,
                     bool all_logits = false);

  ForwardBatch batch() const;

 private:
  std::vector<int32_t> ids_, positions_, slots_, query_start_, table_, logit_rows_;
};

}  // namespace r1
