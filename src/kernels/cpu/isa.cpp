#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/cpu_features.h"
#include "obs/log.h"

namespace r1::kernels::cpu {

namespace {

Isa best_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c) return Isa::kAvx512;
  if (f.avx2 && f.fma && f.f16c) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa initial_isa() {
  const char* forced = std::getenv("R1SERVE_ISA");
  if (forced == nullptr || *forced == '\0') return best_isa();
  const std::string want = forced;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (want != isa_name(isa)) continue;
    if (isa_supported(isa)) return isa;
    log_warning("R1SERVE_ISA=" + want + ": this CPU cannot run it; using " +
                std::string(isa_name(best_isa())));
    return best_isa();
  }
  log_warning("R1SERVE_ISA=" + want + " is not one of avx512, avx2, scalar; using " +
              std::string(isa_name(best_isa())));
  return best_isa();
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{initial_isa()};
  return isa;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512:
      return f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c;
  }
  return false;
}

Isa active_isa() {
  return current().load(std::memory_order_relaxed);
}

bool vnni_kernels() {
  static const bool vnni = cpu_features().avx512vnni;
  return vnni && active_isa() == Isa::kAvx512;
}

bool set_active_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  current().store(isa, std::memory_order_relaxed);
  return true;
}

}  // namespace r1::kernels::cpu
