// The plain-data input of one forward step, as the engine hands it to a
// backend (vLLM's flattened layout): the tokens of every scheduled sequence
// back to back, where each goes in the KV cache, and which rows need logits.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"

namespace r1 {

struct ForwardBatch {
  std::span<const int32_t> token_ids;     // [n_tokens]
  std::span<const int32_t> positions;     // [n_tokens] absolute position in its sequence
  std::span<const int32_t> slot_mapping;  // [n_tokens] KV slot = block * block_size + offset
  std::span<const int32_t> query_start;   // [n_seqs + 1] first token of each sequence
  std::span<const int32_t> block_tables;  // [n_seqs, max_blocks_per_seq], -1 past the end
  int32_t max_blocks_per_seq = 0;
  // Token indices (ascending) whose logits the caller wants, e.g. the last
  // token of each sequence when sampling, every token when scoring.
  std::span<const int32_t> logit_rows;

  int32_t n_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t n_seqs() const { return static_cast<int32_t>(query_start.size()) - 1; }
};

// Limits a batch is checked against before any kernel runs.
struct BatchLimits {
  int32_t vocab_size = 0;     // token ids must be below
  int32_t max_positions = 0;  // positions must be below
  int32_t n_blocks = 0;       // KV blocks in the cache
  int32_t block_size = 0;
};

// The K/V positions the batch's attention reads: each sequence's last
// position + 1, summed (the attention bytes of a profile).
int64_t attended_positions(const ForwardBatch& batch);

// INVALID_ARGUMENT naming the first inconsistency: sizes that disagree, token
// ids or positions out of range, a slot that is not where the block table
// says, a block id out of range, a position whose earlier KV has no block.
Status validate_batch(const ForwardBatch& batch, const BatchLimits& limits);

}  // namespace r1
