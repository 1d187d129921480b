// The Backend contract (DESIGN.md §4): a backend owns the weights, the KV
// cache, activations and logits in its own memory. The engine hands it plain
// host arrays per step. A backend is driven by one thread (the engine's).
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "format/model_config.h"
#include "model/forward_batch.h"
#include "model/step_profile.h"

namespace r1 {

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

  // Runs the model over the batch, writing its K/V into the cache slots, and
  // fills logits: [batch.logit_rows.size(), config().vocab_size] f32 (raw,
  // padding rows masked). The batch is validated first; an invalid batch is
  // INVALID_ARGUMENT and changes nothing.
  virtual Status forward(const ForwardBatch& batch, std::span<float> logits) = 0;

  // Later steps add their per-op times to `profile` (null: stop). A backend
  // without a breakdown ignores it; the caller keeps it alive meanwhile.
  virtual void set_profile(StepProfile* profile) { (void)profile; }
};

}  // namespace r1
