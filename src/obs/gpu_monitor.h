// GPU utilisation, memory and power from NVML, for /metrics and the access
// log. NVML is the driver's own library (libnvidia-ml.so.1): it is opened at
// run time, so the binary neither links it nor needs it where there is no
// GPU.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "core/status.h"

namespace r1 {

struct GpuSample {
  double utilization = 0;    // share of the last sample period a kernel ran, 0..1
  int64_t memory_used = 0;   // bytes
  int64_t memory_total = 0;  // bytes
  double power_watts = 0;
};

class GpuMonitor {
 public:
  // UNAVAILABLE with the reason when NVML or the device is missing.
  static Result<std::unique_ptr<GpuMonitor>> open(int device);
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  // A sample at most a second old (NVML is asked again after that);
  // nullopt when NVML fails. Thread-safe.
  std::optional<GpuSample> latest();

 private:
  struct Api;
  GpuMonitor() = default;
  std::unique_ptr<Api> api_;
  std::mutex mu_;
  std::optional<GpuSample> last_;
  std::chrono::steady_clock::time_point taken_{};
};

}  // namespace r1
