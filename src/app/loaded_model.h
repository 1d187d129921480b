// Opening a model folder and creating the backend for it: the one place that
// names a backend (DESIGN.md §1).
#pragma once

#include <memory>
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

struct LoadOptions {
  int n_threads = 0;
  int64_t kv_cache_tokens = 4096;  // KV capacity in tokens (rounded up to blocks)
  WeightPrecision precision;       // conversions at load
};

// The CPU backend over an open folder (which must outlive it).
Result<std::unique_ptr<Backend>> create_backend(const ModelFolder& folder,
                                                const LoadOptions& options);

Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& options);

}  // namespace r1
