// `r1serve bench --offline --model DIR`: prefill and decode speed of the
// model in this process (no server), next to the memory bandwidth measured in
// the same run, so decode is reported as a fraction of its bandwidth bound.
#pragma once

#include <string>
#include <vector>

#include "app/cli_util.h"
#include "core/status.h"

namespace r1 {

struct OfflineBenchArgs {
  std::string model;
  PrecisionArgs precision;
  DeviceArgs device;
  int threads = 0;
  int prompt_tokens = 128;
  int gen_tokens = 32;
  std::vector<int> batches{1};  // sequences decoded together; one run per entry
  bool json = false;
  bool profile = false;  // per-op breakdown of the decode steps
};

Status run_offline_bench(const OfflineBenchArgs& args);

}  // namespace r1
