// The CUDA backend (built with -DR1SERVE_CUDA=ON): weights, KV cache,
// activations and logits in device memory; the decoder recipe's ops on the
// kernels of kernels/cuda/ and cuBLASLt; the sampler on the device.
//
// Memory plan at creation: the weights, the activation workspace for
// `max_batched_tokens`, then KV blocks from `gpu_memory_utilization` of the
// device's memory (or exactly `kv_cache_tokens` when set). Too little memory
// for one full step is an error here, never an out-of-memory mid-request.
//
// Without CUDA in the build, create_cuda_backend() says so and fails.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "model/backend.h"

namespace r1 {

enum class GpuWeights : uint8_t {
  kBf16,  // as stored (f16 and f32 files converted to bf16)
  kInt8,  // weight-only int8, one scale per output channel
  kFp8,   // weight-only FP8 E4M3, one scale per output channel
};

// How --dtype int8 runs the products of more than a few tokens (prefill,
// large batches); decode steps run the int8 GEMV either way.
enum class Int8Prefill : uint8_t {
  kDequantize,  // the matrix dequantised to 16-bit, then the 16-bit GEMM
  kInt8Gemm,    // activations quantised per token, cuBLASLt's int8 GEMM
};

struct CudaBackendOptions {
  int device = 0;  // --device cuda:N
  int32_t block_size = 16;
  int64_t kv_cache_tokens = 0;           // 0: from gpu_memory_utilization
  double gpu_memory_utilization = 0.90;  // of the device's memory, for everything
  int32_t max_batched_tokens = 2048;     // tokens per step at most
  GpuWeights weights = GpuWeights::kBf16;
  Int8Prefill int8_prefill = Int8Prefill::kDequantize;
  bool cuda_graphs = true;  // replay decode steps as CUDA graphs
};

// Whether this binary has the CUDA backend.
bool cuda_backend_built();

// UNAVAILABLE with a one-line reason when the build has no CUDA, there is
// no device (or no driver), or the index is out of range;
// RESOURCE_EXHAUSTED when the model and one step's KV do not fit.
Result<std::unique_ptr<Backend>> create_cuda_backend(const ModelConfig& config,
                                                     std::shared_ptr<const WeightFiles> files,
                                                     int32_t n_valid_vocab,
                                                     const CudaBackendOptions& options);

// Device-to-device copy bandwidth in 10^9 bytes/s (bytes read plus bytes
// written), one entry per repetition of a `bytes`-sized cudaMemcpy timed
// with events: the decode bound's denominator on a GPU.
Result<std::vector<double>> measure_device_copy(int device, int repetitions,
                                                size_t bytes = size_t{1} << 30);

// The device's name, memory and compute capability ("NVIDIA H100 80GB HBM3,
// 79.1 GiB, sm_90"), or why there is none.
Result<std::string> describe_cuda_device(int device);

}  // namespace r1
