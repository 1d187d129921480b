// Small helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/loaded_model.h"
#include "core/status.h"
#include "model/weights.h"

namespace CLI {
class App;
}

namespace r1 {

// "1, 2,3" -> {1, 2, 3}; INVALID_ARGUMENT naming the bad item.
Result<std::vector<int32_t>> parse_ids_csv(const std::string& csv);

// --dtype, --lm-head-dtype, --embed-dtype, --int8-group-size, as given.
struct PrecisionArgs {
  std::string dtype;
  std::string lm_head_dtype;
  std::string embed_dtype;
  int64_t int8_group_size = 0;
  std::string kv_cache_dtype = "auto";
};
void add_precision_options(CLI::App* cmd, PrecisionArgs* args);
// INVALID_ARGUMENT naming the flag for a dtype it does not know. "fp8" is
// not a WeightPrecision (it is the GPU's): see load_options().
Result<WeightPrecision> parse_precision(const PrecisionArgs& args);

// --device, --gpu-memory-utilization and --int8-prefill, as given.
struct DeviceArgs {
  std::string device = "cpu";
  double gpu_memory_utilization = 0.90;
  std::string int8_prefill = "dequantize";
};
void add_device_options(CLI::App* cmd, DeviceArgs* args);

// LoadOptions from the precision and device flags (threads and KV size are
// the command's to set).
Result<LoadOptions> load_options(const PrecisionArgs& precision, const DeviceArgs& device);

// Prints "r1serve: error: <message>" on stderr and returns 1.
int report_error(const Status& status);

}  // namespace r1
