#include "model/forward_batch.h"

#include <string>

namespace r1 {

Status validate_batch(const ForwardBatch& b, const BatchLimits& lim) {
  const size_t n = b.token_ids.size();
  if (n == 0) return invalid_argument("forward batch: no tokens");
  if (b.positions.size() != n || b.slot_mapping.size() != n) {
    return invalid_argument("forward batch: token_ids, positions and slot_mapping differ in size");
  }
  if (b.query_start.size() < 2) return invalid_argument("forward batch: no sequences");
  const int32_t n_seqs = b.n_seqs();
  if (b.max_blocks_per_seq <= 0 ||
      b.block_tables.size() != static_cast<size_t>(n_seqs) * b.max_blocks_per_seq) {
    return invalid_argument("forward batch: block_tables is not [n_seqs, max_blocks_per_seq]");
  }
  if (b.query_start[0] != 0 || b.query_start[n_seqs] != static_cast<int32_t>(n)) {
    return invalid_argument("forward batch: query_start must run from 0 to n_tokens");
  }
  for (int32_t s = 0; s < n_seqs; ++s) {
    if (b.query_start[s + 1] <= b.query_start[s]) {
      return invalid_argument("forward batch: sequence " + std::to_string(s) + " has no tokens");
    }
  }
  for (int32_t s = 0; s < n_seqs; ++s) {
    const int32_t* table = b.block_tables.data() + static_cast<size_t>(s) * b.max_blocks_per_seq;
    for (int32_t t = b.query_start[s]; t < b.query_start[s + 1]; ++t) {
      const int32_t id = b.token_ids[t], pos = b.positions[t];
      if (id < 0 || id >= lim.vocab_size) {
        return invalid_argument("forward batch: token id " + std::to_string(id) +
                                " outside the vocabulary of " + std::to_string(lim.vocab_size));
      }
      if (pos < 0 || pos >= lim.max_positions) {
        return invalid_argument("forward batch: position " + std::to_string(pos) +
                                " outside the context of " + std::to_string(lim.max_positions));
      }
      if (t > b.query_start[s] && pos != b.positions[t - 1] + 1) {
        return invalid_argument("forward batch: positions of sequence " + std::to_string(s) +
                                " are not consecutive");
      }
      const int32_t n_used_blocks = pos / lim.block_size + 1;
      if (n_used_blocks > b.max_blocks_per_seq) {
        return invalid_argument("forward batch: position " + std::to_string(pos) +
                                " past the block table");
      }
      for (int32_t blk = 0; blk < n_used_blocks; ++blk) {
        if (table[blk] < 0 || table[blk] >= lim.n_blocks) {
          return invalid_argument("forward batch: sequence " + std::to_string(s) + " block " +
                                  std::to_string(blk) + " = " + std::to_string(table[blk]) +
                                  " is not a cache block");
        }
      }
      const int32_t want_slot = table[pos / lim.block_size] * lim.block_size + pos % lim.block_size;
      if (b.slot_mapping[t] != want_slot) {
        return invalid_argument("forward batch: slot of token " + std::to_string(t) +
                                " disagrees with its block table");
      }
    }
  }
  int32_t prev = -1;
  for (int32_t r : b.logit_rows) {
    if (r <= prev || r >= static_cast<int32_t>(n)) {
      return invalid_argument("forward batch: logit_rows must be ascending token indices");
    }
    prev = r;
  }
  return ok_status();
}

int64_t attended_positions(const ForwardBatch& b) {
  int64_t positions = 0;
  for (int32_t s = 0; s < b.n_seqs(); ++s) {
    positions += b.positions[static_cast<size_t>(b.query_start[s + 1] - 1)] + 1;
  }
  return positions;
}

}  // namespace r1
