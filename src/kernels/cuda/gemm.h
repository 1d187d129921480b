// Matrix products of the CUDA backend through cuBLASLt: y = x w^T with x:
// [n, k] bf16 activations, w: [m, k] bf16 weights as stored (row-major), y:
// [n, m] bf16 or f32, bf16 tensor cores accumulating in f32. The algorithm
// for each shape is chosen once (cuBLASLt's heuristic) and cached; a
// preallocated workspace keeps CUDA-graph capture free of allocations.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "core/status.h"
#include "kernels/cuda/host_quant.h"

namespace r1::kernels::cuda {

class Gemm {
 public:
  // INTERNAL naming the cuBLASLt or CUDA error when the handle or the
  // workspace cannot be had.
  static Result<std::unique_ptr<Gemm>> create(size_t workspace_bytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y: [n, m] = x: [n, k] * w: [m, k]^T on `stream`; y is f32 when
  // `f32_out`, bf16 otherwise. INTERNAL when cuBLASLt refuses the shape.
  // `f16`: x, w (and y unless f32) are f16 rather than bf16.
  Status matmul(const bf16_t* x, const bf16_t* w, int64_t n, int64_t m, int64_t k, void* y,
                bool f32_out, cudaStream_t stream, bool f16 = false);

  // The same product on FP8 E4M3 operands (sm_89 and later), each with one
  // scale for the whole tensor (device pointers): y = (x_scale * x)
  // (w_scale * w)^T, accumulated in f32. k must be a multiple of 16.
  // INTERNAL when cuBLASLt has no algorithm for it (the caller falls back).
  Status matmul_fp8(const uint8_t* x, const float* x_scale, const uint8_t* w, const float* w_scale,
                    int64_t n, int64_t m, int64_t k, void* y, bool f32_out, cudaStream_t stream,
                    bool f16 = false);

  // y: [n, m] int32 = x: [n, k] int8 * w: [m, k] int8^T, exact (int8 tensor
  // cores, sm_75 and later). cuBLASLt's int8 products need m and k
  // multiples of 4 (INVALID_ARGUMENT otherwise); INTERNAL when it has no
  // algorithm for the shape (the caller falls back).
  Status matmul_int8(const int8_t* x, const int8_t* w, int64_t n, int64_t m, int64_t k, int32_t* y,
                     cudaStream_t stream);

 private:
  Gemm() = default;
  struct Plan;
  enum class Inputs : uint8_t { kBf16, kF16, kFp8, kInt8 };
  Result<const Plan*> plan(int64_t n, int64_t m, int64_t k, bool f32_out, Inputs in, bool f16_out);
  Status run(const Plan& p, const void* w, const void* x, void* y, cudaStream_t stream,
             const char* what, bool int32_scale = false);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, Inputs, bool>, std::unique_ptr<Plan>> plans_;
};

}  // namespace r1::kernels::cuda
