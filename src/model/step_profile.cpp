#include "model/step_profile.h"

namespace r1 {

std::string_view step_op_name(StepOp op) {
  switch (op) {
    case StepOp::kEmbedding:
      return "embedding";
    case StepOp::kNorm:
      return "rmsnorm";  // the residual add before it included
    case StepOp::kQkv:
      return "qkv";
    case StepOp::kRopeKvStore:
      return "rope_kv_store";
    case StepOp::kAttention:
      return "attention";
    case StepOp::kOProj:
      return "o_proj";
    case StepOp::kResidual:
      return "residual";
    case StepOp::kGateUp:
      return "gate_up_silu";
    case StepOp::kDown:
      return "down";
    case StepOp::kLmHead:
      return "lm_head";
    case StepOp::kSample:
      return "sample";
    case StepOp::kCount:
      break;
  }
  return "?";
}

int64_t StepProfile::total_ns() const {
  int64_t t = 0;
  for (const Entry& e : ops) t += e.ns;
  return t;
}

}  // namespace r1
