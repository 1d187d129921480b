// The plain data of one engine step: what the Scheduler plans (StepInput,
// everything a backend needs to build its ForwardBatch), what comes back from
// the model and sampler (StepOutput), and what the step did to each request
// (RequestUpdate). No pointers into the scheduler: a step can be logged,
// copied to a device thread or scripted by a test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/request.h"
#include "model/forward_batch.h"

namespace r1 {

struct ScheduledRequest {
  std::string request_id;
  int32_t first_position = 0;  // its n_computed_tokens before this step
  int32_t n_new_tokens = 0;    // tokens computed this step (1 for a decode)
  // The step computes its last token, so that row's logits give its next
  // token; false for a prompt chunk that is not the last.
  bool sample = false;
  int32_t sample_row = -1;  // its index in StepInput::logit_rows when `sample`
};

struct StepInput {
  // Batch order: running requests first, then requests admitted this step.
  std::vector<ScheduledRequest> requests;

  // The flattened batch (model/forward_batch.h), one entry per token of
  // every scheduled request, back to back:
  std::vector<int32_t> token_ids;     // [n_tokens]
  std::vector<int32_t> positions;     // [n_tokens] absolute position in its request
  std::vector<int32_t> slot_mapping;  // [n_tokens] block * block_size + offset
  std::vector<int32_t> query_start;   // [n_seqs + 1] first token of each request
  std::vector<int32_t> block_tables;  // [n_seqs, max_blocks_per_seq] int32, -1 past the end
  int32_t max_blocks_per_seq = 0;
  // [n_rows] ascending token indices whose logits the step uses: each
  // sampling request's last token (ScheduledRequest::sample_row), and every
  // prompt position of a request scoring its prompt (RequestSpec::
  // prompt_logprobs) not scored before; a row can be both.
  std::vector<int32_t> logit_rows;
  std::vector<int32_t> logit_row_owner;  // [n_rows] index into `requests`

  // Requests that lost their blocks while this step was planned (preempted,
  // to recompute) and requests whose abort took effect (blocks freed).
  std::vector<std::string> preempted;
  std::vector<std::string> aborted;

  bool empty() const { return requests.empty(); }
  int32_t n_tokens() const { return static_cast<int32_t>(token_ids.size()); }

  // A view of the batch; valid while this StepInput lives and is unchanged.
  ForwardBatch forward_batch() const {
    return ForwardBatch{token_ids,    positions,          slot_mapping, query_start,
                        block_tables, max_blocks_per_seq, logit_rows};
  }
};

struct StepOutput {
  // [n_rows] the token drawn at each logit row, in order (read at the
  // sample rows only).
  std::vector<int32_t> sampled;
};

// One sampled token appended to a request, and where that left it.
struct RequestUpdate {
  std::string request_id;
  int32_t token = 0;
  RequestStatus status = RequestStatus::kRunning;  // kRunning or a finished state
  int32_t n_prompt_tokens = 0;
  int32_t n_output_tokens = 0;         // this token included
  int32_t n_cached_prompt_tokens = 0;  // prefix-cache hit (usage: cached_tokens)
};

}  // namespace r1
