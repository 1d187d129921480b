#include "kernel_test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernels/cpu/isa.h"

namespace r1::kernels::testing {

void for_each_isa(const std::function<void(const std::string&)>& fn) {
  const cpu::Isa before = cpu::active_isa();
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    const std::string name(cpu::isa_name(isa));
    if (!cpu::set_active_isa(isa)) {
      static bool reported = false;
      if (!reported) std::printf("[ skipped  ] ISA %s: not supported by this CPU\n", name.c_str());
      reported = true;
      continue;
    }
    fn(name);
  }
  cpu::set_active_isa(before);
}

std::vector<float> random_floats(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

RandomMatrix random_matrix(int64_t rows, int64_t cols, DType dtype, uint64_t seed) {
  std::vector<float> f = random_floats(static_cast<size_t>(rows * cols), seed);
  RandomMatrix m;
  m.bytes.resize(f.size() * dtype_size(dtype));
  for (size_t i = 0; i < f.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(m.bytes.data() + 4 * i, &f[i], 4);
    } else {
      uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(f[i]) : f32_to_f16(f[i]);
      std::memcpy(m.bytes.data() + 2 * i, &h, 2);
    }
  }
  m.view = MatrixView{m.bytes.data(), dtype, rows, cols};
  return m;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float atol,
                  float rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " [" << i << "] not finite";
    ASSERT_LE(std::fabs(got[i] - want[i]), atol + rtol * std::fabs(want[i]))
        << what << " [" << i << "]: got " << got[i] << ", want " << want[i];
  }
}

MatrixView f32_view(const std::vector<float>& w, int64_t rows, int64_t cols) {
  MatrixView v;
  v.data = w.data();
  v.dtype = DType::kF32;
  v.rows = rows;
  v.cols = cols;
  return v;
}

}  // namespace r1::kernels::testing
