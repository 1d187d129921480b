// Which instruction-set path the CPU kernels take (avx512: AVX-512 F, BW and
// VL). Chosen once from cpuid (the best the CPU runs), or forced with
// R1SERVE_ISA=avx512|avx2|scalar; a forced path the CPU cannot run falls back
// to the best one, with a warning.
#pragma once

#include <string_view>

namespace r1::kernels::cpu {

enum class Isa { kScalar, kAvx2, kAvx512 };

std::string_view isa_name(Isa isa);
bool isa_supported(Isa isa);
// The path in use (read on every kernel call: one relaxed atomic load).
Isa active_isa();
// Whether the integer kernels take their AVX-512 VNNI bodies: the avx512
// path on a CPU with VNNI. The avx512 path without VNNI (Skylake-SP) runs
// the AVX2 integer kernels.
bool vnni_kernels();
// Switches the path (tests and benchmarks sweep them); false, and no change,
// when the CPU cannot run `isa`. Not for use while kernels run on other threads.
bool set_active_isa(Isa isa);

}  // namespace r1::kernels::cpu
