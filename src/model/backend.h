// The Backend contract (DESIGN.md §4): a backend owns the weights, the KV
// cache, activations and logits in its own memory. The engine hands it plain
// host arrays per step (the batch, and what each logit row asks for) and gets
// back sampled ids and only the logprobs that were asked for: full logits
// never leave the backend. A backend is driven by one thread (the engine's).
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "format/model_config.h"
#include "kernels/sampling.h"
#include "model/forward_batch.h"
#include "model/step_profile.h"

namespace r1 {

// What one logit row (ForwardBatch::logit_rows[i]) asks for: a sample, a
// score, or both (the last prompt position of a scored request).
struct RowRequest {
  // Sample with these parameters (kernels/sampling.h, already validated);
  // null: sample nothing.
  const SamplingParams* sampling = nullptr;
  uint64_t draw = 0;                   // the random draw of a non-greedy step
  std::span<const int32_t> prompt;     // the request's ids, read by the penalties
  std::span<const int32_t> generated;  //
  // Teacher-forced scoring: the raw logprob of `score_target` (>= 0) and
  // the `score_top` most likely tokens (0..vocab). -1 / 0: not scored.
  int32_t score_target = -1;
  int32_t score_top = 0;
};

struct RowResult {
  // The row's own failure (no finite logit, an id outside the vocabulary):
  // that request fails, the rest of the step stands.
  Status status;
  SampledToken sampled;           // when RowRequest::sampling was set
  float target_logprob = 0.0f;    // when score_target >= 0
  std::vector<TokenLogprob> top;  // score_top entries, most likely first
};

// Fills `out` for `row` from its [vocab] logits: the reference semantics
// every backend's sampler and scorer is checked against.
void reference_row(const RowRequest& row, std::span<const float> logits, RowResult& out);

// INVALID_ARGUMENT unless there is one row request and one result per logit
// row, and every score target and top count fits the vocabulary.
Status validate_rows(const ForwardBatch& batch, std::span<const RowRequest> rows,
                     std::span<RowResult> results, int32_t n_valid_vocab);

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelConfig& config() const = 0;
  // Ids at or above this have embedding rows but no token: their logits are
  // -inf in every output.
  virtual int32_t n_valid_vocab() const = 0;
  virtual int32_t n_kv_blocks() const = 0;
  virtual int32_t block_size() const = 0;
  // Weight bytes one decode step reads per token (the bandwidth bound's
  // numerator: tokens/s <= bandwidth / this).
  virtual int64_t weight_bytes_per_token() const = 0;
  // KV-cache bytes one position of context holds, all layers, K and V (a
  // decode step reads them for every position it attends to).
  virtual int64_t kv_bytes_per_position() const = 0;

  // Runs the model over the batch, writing its K/V into the cache slots,
  // then samples and scores each logit row as `rows` (one per
  // batch.logit_rows entry) ask: `results` gets one entry per row. Padding
  // ids (>= n_valid_vocab) are never sampled nor reported. The batch is
  // validated first; an invalid batch is INVALID_ARGUMENT and changes
  // nothing.
  virtual Status step(const ForwardBatch& batch, std::span<const RowRequest> rows,
                      std::span<RowResult> results) = 0;

  // Later steps add their per-op times to `profile` (null: stop). A backend
  // without a breakdown ignores it; the caller keeps it alive meanwhile.
  virtual void set_profile(StepProfile* profile) { (void)profile; }
};

}  // namespace r1
