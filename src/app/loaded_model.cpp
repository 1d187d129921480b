#include "app/loaded_model.h"

#include <climits>
#include <string>

#include "model/cpu_backend.h"
#include "model/cuda_backend.h"

namespace r1 {

Result<DeviceChoice> parse_device(const std::string& text) {
  DeviceChoice d;
  if (text == "cpu") return d;
  if (text == "cuda") {
    d.cuda = true;
    return d;
  }
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos) {
    d.cuda = true;
    d.index = std::stoi(text.substr(5));
    return d;
  }
  return invalid_argument("--device " + text + ": expected cpu, cuda or cuda:N");
}

namespace {

Result<std::unique_ptr<Backend>> create_gpu_backend(const ModelFolder& folder,
                                                    const LoadOptions& options) {
  CudaBackendOptions o;
  o.device = options.device.index;
  o.kv_cache_tokens = options.kv_cache_tokens;
  o.gpu_memory_utilization = options.gpu_memory_utilization;
  o.max_batched_tokens = options.max_batched_tokens;
  o.int8_prefill = options.int8_gemm ? Int8Prefill::kInt8Gemm : Int8Prefill::kDequantize;
  const WeightPrecision& p = options.precision;
  if (options.fp8) {
    o.weights = GpuWeights::kFp8;
  } else if (p.layers == DType::kQ8) {
    o.weights = GpuWeights::kInt8;
  } else if (p.layers == DType::kQ4) {
    return invalid_argument("--dtype int4 runs on the CPU only; on a GPU use bf16, int8 or fp8");
  }
  if (p.lm_head || p.embed || p.int8_group_size != 0) {
    return invalid_argument(
        "--lm-head-dtype, --embed-dtype and --int8-group-size apply to the CPU backend only");
  }
  return create_cuda_backend(folder.config, folder.weights, folder.tokenizer->n_tokens(), o);
}

}  // namespace

Result<std::unique_ptr<Backend>> create_backend(const ModelFolder& folder,
                                                const LoadOptions& options) {
  if (options.device.cuda) return create_gpu_backend(folder, options);
  if (options.fp8) return invalid_argument("--dtype fp8 needs --device cuda");
  CpuBackendOptions cpu;
  cpu.n_threads = options.n_threads;
  cpu.block_size = 16;
  cpu.precision = options.precision;
  cpu.kv_dtype = options.kv_cache_dtype;
  const int64_t n_blocks = (options.kv_cache_tokens + cpu.block_size - 1) / cpu.block_size;
  if (options.kv_cache_tokens <= 0 || n_blocks > INT32_MAX / cpu.block_size) {
    return out_of_range("KV cache of " + std::to_string(options.kv_cache_tokens) +
                        " tokens requested; it must be between 1 and 2^31 tokens");
  }
  cpu.n_kv_blocks = static_cast<int32_t>(n_blocks);
  R1_ASSIGN_OR_RETURN(auto backend, CpuBackend::create(folder.config, folder.weights,
                                                       folder.tokenizer->n_tokens(), cpu));
  return std::unique_ptr<Backend>(std::move(backend));
}

Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& options) {
  LoadedModel m;
  R1_ASSIGN_OR_RETURN(m.folder, open_model_folder(dir));
  R1_ASSIGN_OR_RETURN(m.backend, create_backend(m.folder, options));
  return m;
}

}  // namespace r1
