#include "kernels/cuda/gemm.h"

#include <string>

namespace r1::kernels::cuda {

namespace {

Status lt_error(const char* what, cublasStatus_t s) {
  return internal_error(std::string("cuBLASLt ") + what + ": " + cublasLtGetStatusString(s));
}

}  // namespace

// cuBLASLt is column-major. Row-major y[n, m] = x[n, k] w[m, k]^T is, read
// column-major, Y[m, n] = W^T... so: A = w (k x m col-major, transposed to
// m x k), B = x (k x n col-major), C = y (m x n col-major).
struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

Result<std::unique_ptr<Gemm>> Gemm::create(size_t workspace_bytes) {
  std::unique_ptr<Gemm> g(new Gemm());
  const cublasStatus_t s = cublasLtCreate(&g->handle_);
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error("create", s);
  if (workspace_bytes > 0) {
    const cudaError_t e = cudaMalloc(&g->workspace_, workspace_bytes);
    if (e != cudaSuccess) {
      return resource_exhausted(std::string("cuBLASLt workspace: ") + cudaGetErrorString(e));
    }
  }
  g->workspace_bytes_ = workspace_bytes;
  return Result<std::unique_ptr<Gemm>>(std::move(g));
}

Gemm::~Gemm() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

Result<const Gemm::Plan*> Gemm::plan(int64_t n, int64_t m, int64_t k, bool f32_out, Inputs in,
                                     bool f16_out) {
  const auto key = std::make_tuple(n, m, k, f32_out, in, f16_out);
  const bool fp8 = in == Inputs::kFp8, int8 = in == Inputs::kInt8;
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  auto p = std::make_unique<Plan>();
  // int8: int32 sums, int32 alpha and beta.
  cublasStatus_t s = int8 ? cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32I, CUDA_R_32I)
                          : cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error("matmul descriptor", s);
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                 sizeof transpose);
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none);
  const cudaDataType_t out_type = int8      ? CUDA_R_32I
                                  : f32_out ? CUDA_R_32F
                                  : f16_out ? CUDA_R_16F
                                            : CUDA_R_16BF;
  const cudaDataType_t in_type = fp8                  ? CUDA_R_8F_E4M3
                                 : int8               ? CUDA_R_8I
                                 : in == Inputs::kF16 ? CUDA_R_16F
                                                      : CUDA_R_16BF;
  s = cublasLtMatrixLayoutCreate(&p->a, in_type, static_cast<uint64_t>(k), static_cast<uint64_t>(m),
                                 k);
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatrixLayoutCreate(&p->b, in_type, static_cast<uint64_t>(k),
                                   static_cast<uint64_t>(n), k);
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatrixLayoutCreate(&p->c, out_type, static_cast<uint64_t>(m),
                                   static_cast<uint64_t>(n), m);
  }
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error("matrix layout", s);

  cublasLtMatmulPreference_t pref = nullptr;
  s = cublasLtMatmulPreferenceCreate(&pref);
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error("preference", s);
  const uint64_t ws = workspace_bytes_;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof ws);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  s = cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result,
                                     &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error("heuristic", s);
  if (found == 0) {
    return internal_error(std::string("cuBLASLt has no algorithm for a ") +
                          (fp8                  ? "fp8"
                           : int8               ? "int8"
                           : in == Inputs::kF16 ? "f16"
                                                : "bf16") +
                          " product of " + std::to_string(n) + " x " + std::to_string(k) + " by " +
                          std::to_string(m) + " x " + std::to_string(k));
  }
  p->algo = result.algo;
  const Plan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

// y = 1 * w x + 0 * y on the plan; alpha and beta in the plan's scale type
// (int32 for the int8 products, f32 otherwise).
Status Gemm::run(const Plan& p, const void* w, const void* x, void* y, cudaStream_t stream,
                 const char* what, bool int32_scale) {
  const float alpha_f = 1.0f, beta_f = 0.0f;
  const int32_t alpha_i = 1, beta_i = 0;
  const void* alpha = int32_scale ? static_cast<const void*>(&alpha_i) : &alpha_f;
  const void* beta = int32_scale ? static_cast<const void*>(&beta_i) : &beta_f;
  const cublasStatus_t s = cublasLtMatmul(handle_, p.desc, alpha, w, p.a, x, p.b, beta, y, p.c, y,
                                          p.c, &p.algo, workspace_, workspace_bytes_, stream);
  if (s != CUBLAS_STATUS_SUCCESS) return lt_error(what, s);
  return ok_status();
}

Status Gemm::matmul(const bf16_t* x, const bf16_t* w, int64_t n, int64_t m, int64_t k, void* y,
                    bool f32_out, cudaStream_t stream, bool f16) {
  if (n == 0) return ok_status();
  R1_ASSIGN_OR_RETURN(const Plan* p,
                      plan(n, m, k, f32_out, f16 ? Inputs::kF16 : Inputs::kBf16, f16));
  return run(*p, w, x, y, stream, "matmul");
}

Status Gemm::matmul_fp8(const uint8_t* x, const float* x_scale, const uint8_t* w,
                        const float* w_scale, int64_t n, int64_t m, int64_t k, void* y,
                        bool f32_out, cudaStream_t stream, bool f16) {
  if (n == 0) return ok_status();
  if (k % 16 != 0) return invalid_argument("fp8 products need k a multiple of 16");
  R1_ASSIGN_OR_RETURN(const Plan* p, plan(n, m, k, f32_out, Inputs::kFp8, f16));
  // A is the weight, B the activations (see Plan).
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale,
                                 sizeof w_scale);
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale,
                                 sizeof x_scale);
  return run(*p, w, x, y, stream, "fp8 matmul");
}

Status Gemm::matmul_int8(const int8_t* x, const int8_t* w, int64_t n, int64_t m, int64_t k,
                         int32_t* y, cudaStream_t stream) {
  if (n == 0) return ok_status();
  // cuBLASLt's IMMA kernels on plain row/column orders: "TN" (A transposed,
  // as here), leading dimensions and m, k multiples of 4.
  if (m % 4 != 0 || k % 4 != 0) {
    return invalid_argument("int8 products need m and k multiples of 4, not " + std::to_string(m) +
                            " and " + std::to_string(k));
  }
  R1_ASSIGN_OR_RETURN(const Plan* p, plan(n, m, k, false, Inputs::kInt8, false));
  return run(*p, w, x, y, stream, "int8 matmul", /*int32_scale=*/true);
}

}  // namespace r1::kernels::cuda
