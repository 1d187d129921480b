#include "model/decoder.h"

namespace r1 {

void run_decoder(DecoderOps& ops, const ModelConfig& config, const ForwardBatch& batch,
                 StepProfile* profile) {
  auto timed = [&](StepOp op, int64_t layer, auto&& fn) {
    ProfileScope t(profile, op, profile != nullptr ? ops.bytes(op, layer, batch) : 0);
    fn();
  };
  timed(StepOp::kEmbedding, -1, [&] { ops.embed(batch); });
  for (int64_t l = 0; l < config.n_layers; ++l) {
    if (l == 0) {
      timed(StepOp::kNorm, l, [&] { ops.norm(l, NormSlot::kAttention); });
    } else {
      timed(StepOp::kNorm, l, [&] { ops.add_norm(l, NormSlot::kAttention); });
    }
    timed(StepOp::kQkv, l, [&] { ops.qkv(l); });
    timed(StepOp::kRopeKvStore, l, [&] { ops.rope_store(l, batch); });
    timed(StepOp::kAttention, l, [&] { ops.attention(l, batch); });
    timed(StepOp::kOProj, l, [&] { ops.o_proj(l); });
    timed(StepOp::kNorm, l, [&] { ops.add_norm(l, NormSlot::kMlp); });
    timed(StepOp::kGateUp, l, [&] { ops.gate_up(l); });
    timed(StepOp::kDown, l, [&] { ops.down(l); });
  }
  timed(StepOp::kResidual, -1, [&] { ops.add(); });
  if (!batch.logit_rows.empty()) timed(StepOp::kLmHead, -1, [&] { ops.logits(batch); });
}

}  // namespace r1
