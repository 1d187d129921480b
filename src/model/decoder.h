// The decoder recipe: the layer sequence of Qwen2 and Llama-3 (model-facts.md
// §3.1), written once, as the ops a backend implements. A backend supplies
// DecoderOps over its own activations and weights; it never holds its own
// copy of the sequence. What differs between the two architectures (QKV
// biases, RoPE frequencies and scaling, tied embeddings) is data in ArchSpec
// and the weights, not a different sequence.
//
// Per layer, with x the residual stream and h the working activation:
//   h = rmsnorm(x)                        (first layer; later: x += h first)
//   q, k, v = h Wq^T + bq, h Wk^T + bk, h Wv^T + bv
//   q, k = rope(q, k) at the token positions; k, v -> the paged KV cache
//   a = causal paged attention(q, cache)
//   h = a Wo^T
//   x += h; h = rmsnorm(x)
//   g = silu(h Wgate^T) * (h Wup^T)
//   h = g Wdown^T
// then x += h, and the logit rows: rmsnorm(x[rows]) Wlm^T.
#pragma once

#include <cstdint>

#include "format/model_config.h"
#include "model/forward_batch.h"
#include "model/step_profile.h"

namespace r1 {

enum class NormSlot : uint8_t { kAttention, kMlp };

class DecoderOps {
 public:
  virtual ~DecoderOps() = default;

  virtual void embed(const ForwardBatch& batch) = 0;  // x = rows of the embedding
  // h = rmsnorm(x) with the layer's norm weight `slot`.
  virtual void norm(int64_t layer, NormSlot slot) = 0;
  // x += h, then h = rmsnorm(x): one op, so a backend can fuse it.
  virtual void add_norm(int64_t layer, NormSlot slot) = 0;
  virtual void qkv(int64_t layer) = 0;  // q, k, v from h, biases included
  // RoPE on q and k, then k and v into the cache slots: one op, so a
  // backend can fuse it.
  virtual void rope_store(int64_t layer, const ForwardBatch& batch) = 0;
  virtual void attention(int64_t layer, const ForwardBatch& batch) = 0;  // a from q and the cache
  virtual void o_proj(int64_t layer) = 0;                                // h = a Wo^T
  virtual void gate_up(int64_t layer) = 0;  // g = silu(h Wgate^T) * (h Wup^T)
  virtual void down(int64_t layer) = 0;     // h = g Wdown^T
  virtual void add() = 0;                   // x += h
  // The batch's logit rows: rmsnorm(x[rows]) with the final norm, times the
  // lm_head; padding ids masked to -inf. Where the logits go is the
  // backend's (they never leave it).
  virtual void logits(const ForwardBatch& batch) = 0;

  // Bytes `op` of `layer` streams (weights, or K/V for attention), for the
  // profile; 0 when unknown.
  virtual int64_t bytes(StepOp op, int64_t layer, const ForwardBatch& batch) const {
    (void)op, (void)layer, (void)batch;
    return 0;
  }
};

// Runs the recipe over a validated batch; each op is timed into `profile`
// when it is not null (a backend whose ops run asynchronously waits for
// each one while profiling).
void run_decoder(DecoderOps& ops, const ModelConfig& config, const ForwardBatch& batch,
                 StepProfile* profile);

}  // namespace r1
