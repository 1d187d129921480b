// Where a forward step's time goes, op by op (`bench --offline --profile`).
// A backend given a StepProfile adds each op's wall time, calls and the bytes
// it streams (weights for the products, K/V for attention); with none, the
// step pays one null test per op. Written by the step's driving thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace r1 {

enum class StepOp : uint8_t {
  kEmbedding,
  kNorm,         // every RMSNorm, with the residual add before it
  kQkv,          // q, k and v as one product
  kRopeKvStore,  // RoPE on q and k, then k and v into the cache
  kAttention,
  kOProj,
  kResidual,  // the last residual add
  kGateUp,    // gate and up as one product, SiLU(gate) * up fused
  kDown,
  kLmHead,  // the final norm of the logit rows included
  kSample,  // sampling and scoring the logit rows
  kCount,
};

std::string_view step_op_name(StepOp op);

struct StepProfile {
  struct Entry {
    int64_t ns = 0;
    int64_t calls = 0;
    int64_t bytes = 0;  // streamed from memory: weights, or K/V for attention
  };
  std::array<Entry, static_cast<size_t>(StepOp::kCount)> ops{};

  Entry& operator[](StepOp op) { return ops[static_cast<size_t>(op)]; }
  const Entry& operator[](StepOp op) const { return ops[static_cast<size_t>(op)]; }
  int64_t total_ns() const;
};

// Times one op into `profile` (if not null) from construction to destruction.
class ProfileScope {
 public:
  ProfileScope(StepProfile* profile, StepOp op, int64_t bytes = 0)
      : profile_(profile), op_(op), bytes_(bytes) {
    if (profile_) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (!profile_) return;
    StepProfile::Entry& e = (*profile_)[op_];
    e.ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
    ++e.calls;
    e.bytes += bytes_;
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  StepProfile* profile_;
  StepOp op_;
  int64_t bytes_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace r1
