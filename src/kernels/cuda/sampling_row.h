// A sampling row's parameters as the device sampler takes them
// (kernels/cuda/cuda_ops.h DeviceRow), from kernels/sampling.h's
// SamplingParams. Plain C++ (sampling.h needs C++20; the .cu files are C++17).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/sampling.h"

namespace r1::kernels::cuda {

// The row samples with `params` and `draw`; it reports params' logprobs (at
// most kDeviceMaxTop alternatives). Penalty ids and scoring are the
// caller's to add.
inline DeviceRow sampling_row(const SamplingParams& params, uint64_t draw) {
  DeviceRow d;
  d.sample = 1;
  d.greedy = is_greedy(params) ? 1 : 0;
  d.logprob = params.logprobs ? 1 : 0;
  d.n_top = params.logprobs ? std::min(params.n_top_logprobs, kDeviceMaxTop) : 0;
  d.top_k = params.top_k;
  d.temperature = params.temperature;
  d.top_p = params.top_p;
  d.min_p = params.min_p;
  d.repetition_penalty = params.repetition_penalty;
  d.presence_penalty = params.presence_penalty;
  d.frequency_penalty = params.frequency_penalty;
  d.draw = draw;
  return d;
}

}  // namespace r1::kernels::cuda
