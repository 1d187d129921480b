// Device memory for the CUDA backend (model/cuda_backend.cpp): owned
// allocations, weight matrices on the device and their upload (bf16/f16, or
// quantised to int8 / FP8 on the host at load), and CUDA errors as Status.
// Included only where R1SERVE_WITH_CUDA is set.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/status.h"
#include "kernels/ops.h"
#include "model/cuda_backend.h"

namespace r1::cuda_memory {

// OK, or the CUDA error with `what` (RESOURCE_EXHAUSTED when out of memory).
Status cuda_status(cudaError_t e, const std::string& what);

#define R1_CUDA(call, what) R1_RETURN_IF_ERROR(cuda_status((call), (what)))

// One device allocation, freed with its owner.
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) { o.ptr = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr, o.ptr);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  Status allocate(size_t n, const std::string& what) {
    bytes = n;
    if (n == 0) return ok_status();
    return cuda_status(cudaMalloc(&ptr, n),
                       "allocating " + what + " (" + std::to_string(n) + " bytes)");
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// A weight matrix on the device: bf16, or quantised bytes with row scales.
struct DeviceMatrix {
  DeviceBuffer data, scales;
  GpuWeights kind = GpuWeights::kBf16;
  int64_t rows = 0, cols = 0;
  // FP8 with one scale for the whole matrix (every row's scale equal): its
  // products on more than a few tokens go through cuBLASLt's FP8 GEMM.
  // Cleared if cuBLASLt refuses the shape (the dequantised path then).
  mutable bool fp8_gemm = false;
  // int8 whose products on more than a few tokens go through cuBLASLt's
  // int8 GEMM (Int8Prefill::kInt8Gemm); cleared, as fp8_gemm is, if
  // cuBLASLt refuses the shape.
  mutable bool int8_gemm = false;
};

// Uploads the row-wise concatenation of `parts` (same cols) as one matrix:
// bf16 (f16 when `f16`), or quantised per row; with `per_tensor`, FP8 with
// one scale for the whole matrix (cuBLASLt's FP8 GEMM).
Status upload_matrix(std::initializer_list<const kernels::MatrixView*> parts, GpuWeights kind,
                     const std::string& name, DeviceMatrix& out, bool per_tensor = false,
                     bool f16 = false);

Status upload_floats(const std::vector<float>& v, const std::string& name, DeviceBuffer& out);

// Bytes a matrix of this kind takes on the device, scales included.
int64_t matrix_device_bytes(int64_t rows, int64_t cols, GpuWeights kind);

// "1.25 GiB".
std::string gib(int64_t bytes);

}  // namespace r1::cuda_memory
