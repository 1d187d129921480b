// Built only with the CUDA backend (R1SERVE_WITH_CUDA).
#if R1SERVE_WITH_CUDA

#include "model/cuda_device_memory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/dtype.h"
#include "kernels/cuda/host_quant.h"

namespace r1 {
namespace cuda_memory {

namespace kcu = kernels::cuda;

Status cuda_status(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return ok_status();
  if (e == cudaErrorMemoryAllocation) {
    return resource_exhausted(what + ": out of GPU memory");
  }
  return internal_error(what + ": " + cudaGetErrorString(e));
}

namespace {

// Row r of a host matrix as f32.
void row_f32(const kernels::MatrixView& m, int64_t r, float* out) {
  const int64_t c = m.cols;
  switch (m.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(m.data) + r * c, static_cast<size_t>(c) * 4);
      return;
    case DType::kBF16: {
      const auto* p = static_cast<const uint16_t*>(m.data) + r * c;
      for (int64_t i = 0; i < c; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case DType::kF16: {
      const auto* p = static_cast<const uint16_t*>(m.data) + r * c;
      for (int64_t i = 0; i < c; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    default:
      for (int64_t i = 0; i < c; ++i) out[i] = kernels::matrix_at(m, r, i);
  }
}

}  // namespace

Status upload_matrix(std::initializer_list<const kernels::MatrixView*> parts, GpuWeights kind,
                     const std::string& name, DeviceMatrix& out, bool per_tensor, bool f16) {
  out.kind = kind;
  out.fp8_gemm = per_tensor && kind == GpuWeights::kFp8;
  out.cols = (*parts.begin())->cols;
  out.rows = 0;
  for (const auto* p : parts) out.rows += p->rows;
  const size_t elem = kind == GpuWeights::kBf16 ? 2 : 1;
  R1_RETURN_IF_ERROR(out.data.allocate(static_cast<size_t>(out.rows * out.cols) * elem, name));
  if (kind != GpuWeights::kBf16) {
    R1_RETURN_IF_ERROR(out.scales.allocate(static_cast<size_t>(out.rows) * 4, name + " scales"));
  }
  // Through a host staging buffer of up to 64 rows.
  constexpr int64_t kRows = 64;
  std::vector<float> f32(static_cast<size_t>(kRows * out.cols));
  std::vector<uint16_t> bf(static_cast<size_t>(kRows * out.cols));
  std::vector<uint8_t> q(static_cast<size_t>(kRows * out.cols));
  std::vector<float> scales(kRows);
  // One scale for the matrix: the amax of every part, in a first pass.
  float tensor_amax = 0.0f;
  if (out.fp8_gemm) {
    std::vector<float> row(static_cast<size_t>(out.cols));
    for (const auto* p : parts) {
      for (int64_t r = 0; r < p->rows; ++r) {
        row_f32(*p, r, row.data());
        for (float v : row) tensor_amax = std::max(tensor_amax, std::fabs(v));
      }
    }
  }
  int64_t dst_row = 0;
  for (const auto* p : parts) {
    for (int64_t r0 = 0; r0 < p->rows; r0 += kRows) {
      const int64_t n = std::min(kRows, p->rows - r0);
      const void* src = nullptr;
      size_t bytes = 0;
      if (kind == GpuWeights::kBf16 && !f16 && p->dtype == DType::kBF16) {
        src = static_cast<const uint16_t*>(p->data) + r0 * p->cols;  // as stored
        bytes = static_cast<size_t>(n * p->cols) * 2;
      } else {
        for (int64_t r = 0; r < n; ++r) row_f32(*p, r0 + r, f32.data() + r * p->cols);
        if (kind == GpuWeights::kBf16) {
          for (int64_t i = 0; i < n * p->cols; ++i) {
            bf[i] = f16 ? f32_to_f16(f32[i]) : f32_to_bf16(f32[i]);
          }
          src = bf.data();
          bytes = static_cast<size_t>(n * p->cols) * 2;
        } else {
          kcu::quantize_rows(
              kind == GpuWeights::kInt8 ? kcu::QuantKind::kInt8 : kcu::QuantKind::kFp8E4M3,
              f32.data(), n, p->cols, q.data(), scales.data(), tensor_amax);
          src = q.data();
          bytes = static_cast<size_t>(n * p->cols);
          R1_CUDA(cudaMemcpy(out.scales.as<float>() + dst_row, scales.data(),
                             static_cast<size_t>(n) * 4, cudaMemcpyHostToDevice),
                  "uploading " + name);
        }
      }
      R1_CUDA(cudaMemcpy(out.data.as<uint8_t>() + dst_row * out.cols * static_cast<int64_t>(elem),
                         src, bytes, cudaMemcpyHostToDevice),
              "uploading " + name);
      dst_row += n;
    }
  }
  return ok_status();
}

Status upload_floats(const std::vector<float>& v, const std::string& name, DeviceBuffer& out) {
  R1_RETURN_IF_ERROR(out.allocate(v.size() * 4, name));
  if (v.empty()) return ok_status();
  return cuda_status(cudaMemcpy(out.ptr, v.data(), v.size() * 4, cudaMemcpyHostToDevice),
                     "uploading " + name);
}

int64_t matrix_device_bytes(int64_t rows, int64_t cols, GpuWeights kind) {
  return kind == GpuWeights::kBf16 ? rows * cols * 2 : rows * cols + rows * 4;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

}  // namespace cuda_memory

using namespace cuda_memory;

Result<std::vector<double>> measure_device_copy(int device, int repetitions, size_t bytes) {
  R1_CUDA(cudaSetDevice(device), "selecting the device");
  DeviceBuffer a, b;
  R1_RETURN_IF_ERROR(a.allocate(bytes, "copy source"));
  R1_RETURN_IF_ERROR(b.allocate(bytes, "copy destination"));
  R1_CUDA(cudaMemset(a.ptr, 1, bytes), "filling the copy source");
  cudaEvent_t start = nullptr, stop = nullptr;
  R1_CUDA(cudaEventCreate(&start), "creating events");
  R1_CUDA(cudaEventCreate(&stop), "creating events");
  std::vector<double> out;
  Status st;
  for (int i = 0; i <= repetitions && st.ok(); ++i) {  // the first is a warm-up
    st = cuda_status(cudaEventRecord(start), "timing a copy");
    if (st.ok())
      st = cuda_status(cudaMemcpy(b.ptr, a.ptr, bytes, cudaMemcpyDeviceToDevice), "copy");
    if (st.ok()) st = cuda_status(cudaEventRecord(stop), "timing a copy");
    if (st.ok()) st = cuda_status(cudaEventSynchronize(stop), "timing a copy");
    float ms = 0.0f;
    if (st.ok()) st = cuda_status(cudaEventElapsedTime(&ms, start, stop), "timing a copy");
    if (st.ok() && i > 0) out.push_back(2.0 * static_cast<double>(bytes) / (ms * 1e6));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (!st.ok()) return st;
  return out;
}

Result<std::string> describe_cuda_device(int device) {
  cudaDeviceProp p{};
  const cudaError_t e = cudaGetDeviceProperties(&p, device);
  if (e != cudaSuccess) return unavailable(std::string("no CUDA device: ") + cudaGetErrorString(e));
  return std::string(p.name) + ", " + gib(static_cast<int64_t>(p.totalGlobalMem)) + ", sm_" +
         std::to_string(p.major) + std::to_string(p.minor);
}

}  // namespace r1

#endif  // R1SERVE_WITH_CUDA
