// Small helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace r1 {

// "1, 2,3" -> {1, 2, 3}; INVALID_ARGUMENT naming the bad item.
Result<std::vector<int32_t>> parse_ids_csv(const std::string& csv);

// Prints "r1serve: error: <message>" on stderr and returns 1.
int report_error(const Status& status);

}  // namespace r1
