// Opening a model folder and creating the backend for it: the one place that
// names a backend (DESIGN.md §1).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "model/backend.h"
#include "model/model_folder.h"
#include "model/weights.h"

namespace r1 {

struct LoadedModel {
  ModelFolder folder;
  std::unique_ptr<Backend> backend;
};

// Where the model runs: "cpu", "cuda" or "cuda:N" (--device).
struct DeviceChoice {
  bool cuda = false;
  int index = 0;
};
// INVALID_ARGUMENT for anything else.
Result<DeviceChoice> parse_device(const std::string& text);

struct LoadOptions {
  int n_threads = 0;
  // KV capacity in tokens (rounded up to blocks); on a GPU, 0 = what
  // gpu_memory_utilization leaves.
  int64_t kv_cache_tokens = 4096;
  WeightPrecision precision;  // conversions at load
  // CPU: bf16 or f32, unset = CpuBackend::auto_kv_dtype; a GPU's cache is bf16.
  std::optional<DType> kv_cache_dtype;
  DeviceChoice device;
  bool fp8 = false;                      // --dtype fp8 (GPU only)
  double gpu_memory_utilization = 0.90;  // GPU only
  int32_t max_batched_tokens = 2048;     // GPU: sizes the activation workspace
  bool int8_gemm = false;                // GPU int8: prefill on int8 tensor cores
};

// The backend over an open folder (which must outlive it), on the device
// `options` names.
Result<std::unique_ptr<Backend>> create_backend(const ModelFolder& folder,
                                                const LoadOptions& options);

Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& options);

}  // namespace r1
