#include "app/loaded_model.h"

#include <climits>
#include <string>

#include "model/cpu_backend.h"

namespace r1 {

Result<std::unique_ptr<Backend>> create_backend(const ModelFolder& folder,
                                                const LoadOptions& options) {
  CpuBackendOptions cpu;
  cpu.n_threads = options.n_threads;
  cpu.block_size = 16;
  cpu.precision = options.precision;
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
