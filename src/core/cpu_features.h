// What the CPU can do, read once with cpuid (x86-64). Kernels use it to pick
// a code path at run time.
#pragma once

namespace r1 {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
};

// Detected on first call; thread-safe.
const CpuFeatures& cpu_features();

}  // namespace r1
