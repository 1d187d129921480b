#include "obs/gpu_monitor.h"

#include <dlfcn.h>

#include <string>

namespace r1 {

// The few NVML entry points used, with their C types (nvml.h; stable ABI).
struct GpuMonitor::Api {
  using Device = void*;
  struct Utilization {
    unsigned int gpu, memory;
  };
  struct Memory {
    unsigned long long total, free, used;
  };
  void* lib = nullptr;
  Device device = nullptr;
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*handle_by_index)(unsigned int, Device*) = nullptr;
  int (*utilization)(Device, Utilization*) = nullptr;
  int (*memory)(Device, Memory*) = nullptr;
  int (*power)(Device, unsigned int*) = nullptr;  // milliwatts
  ~Api() {
    if (shutdown != nullptr) shutdown();
    if (lib != nullptr) dlclose(lib);
  }
};

Result<std::unique_ptr<GpuMonitor>> GpuMonitor::open(int device) {
  auto api = std::make_unique<Api>();
  api->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (api->lib == nullptr) return unavailable("NVML (libnvidia-ml.so.1) is not installed");
  auto sym = [&](const char* name) { return dlsym(api->lib, name); };
  api->init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
  api->handle_by_index =
      reinterpret_cast<int (*)(unsigned int, Api::Device*)>(sym("nvmlDeviceGetHandleByIndex_v2"));
  api->utilization = reinterpret_cast<int (*)(Api::Device, Api::Utilization*)>(
      sym("nvmlDeviceGetUtilizationRates"));
  api->memory =
      reinterpret_cast<int (*)(Api::Device, Api::Memory*)>(sym("nvmlDeviceGetMemoryInfo"));
  api->power =
      reinterpret_cast<int (*)(Api::Device, unsigned int*)>(sym("nvmlDeviceGetPowerUsage"));
  auto shutdown = reinterpret_cast<int (*)()>(sym("nvmlShutdown"));
  if (!api->init || !api->handle_by_index || !api->utilization || !api->memory || !api->power ||
      !shutdown) {
    return unavailable("NVML lacks an entry point r1serve uses");
  }
  if (int rc = api->init(); rc != 0) {
    return unavailable("NVML did not start (error " + std::to_string(rc) + ")");
  }
  api->shutdown = shutdown;
  if (int rc = api->handle_by_index(static_cast<unsigned int>(device), &api->device); rc != 0) {
    return unavailable("NVML has no device " + std::to_string(device) + " (error " +
                       std::to_string(rc) + ")");
  }
  std::unique_ptr<GpuMonitor> m(new GpuMonitor());
  m->api_ = std::move(api);
  return m;
}

GpuMonitor::~GpuMonitor() = default;

std::optional<GpuSample> GpuMonitor::latest() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (last_ && now - taken_ < std::chrono::seconds(1)) return last_;
  Api::Utilization u{};
  Api::Memory mem{};
  unsigned int mw = 0;
  if (api_->utilization(api_->device, &u) != 0 || api_->memory(api_->device, &mem) != 0) {
    return std::nullopt;
  }
  GpuSample s;
  s.utilization = u.gpu / 100.0;
  s.memory_used = static_cast<int64_t>(mem.used);
  s.memory_total = static_cast<int64_t>(mem.total);
  if (api_->power(api_->device, &mw) == 0) s.power_watts = mw / 1000.0;
  last_ = s;
  taken_ = now;
  return last_;
}

}  // namespace r1
