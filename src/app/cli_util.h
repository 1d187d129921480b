// Small helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
};
void add_precision_options(CLI::App* cmd, PrecisionArgs* args);
// INVALID_ARGUMENT naming the flag for a dtype it does not know.
Result<WeightPrecision> parse_precision(const PrecisionArgs& args);

// Prints "r1serve: error: <message>" on stderr and returns 1.
int report_error(const Status& status);

}  // namespace r1
