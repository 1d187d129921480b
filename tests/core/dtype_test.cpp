#include "core/dtype.h"

#include "core/cpu_features.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace r1 {
namespace {

// The CPU's own F16C conversion (IEEE round-to-nearest-even) is the
// independent oracle for f16.
__attribute__((target("f16c"))) uint16_t oracle_f16(float f) {
  return static_cast<uint16_t>(
      _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
__attribute__((target("f16c"))) float oracle_f32(uint16_t h) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
bool has_f16c() {
  return cpu_features().f16c;
}

TEST(DTypeTest, F16MatchesHardwareConversionOnRandomAndEdgeValues) {
  if (!has_f16c()) GTEST_SKIP() << "no F16C on this CPU to compare with";
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = any(rng);
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), oracle_f16(f)) << "f=" << f << " bits=" << std::hex << bits;
    ++checked;
  }
  std::uniform_real_distribution<float> small(-70000.f, 70000.f);
  for (int i = 0; i < 100000; ++i) {
    float f = small(rng) * (i % 3 == 0 ? 1e-6f : 1.f);
    ASSERT_EQ(f32_to_f16(f), oracle_f16(f)) << f;
  }
  for (float f : {0.f, -0.f, 65504.f, 65520.f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-10f,
                  std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_f16(f), oracle_f16(f)) << f;
  }
  EXPECT_GT(checked, 100000);
}

TEST(DTypeTest, F16ToF32IsExactForEveryHalf) {
  if (!has_f16c()) GTEST_SKIP() << "no F16C on this CPU to compare with";
  for (uint32_t h = 0; h < 65536; ++h) {
    uint16_t hb = static_cast<uint16_t>(h);
    float want = oracle_f32(hb);
    float got = f16_to_f32(hb);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      ASSERT_EQ(std::memcmp(&want, &got, 4), 0) << "h=" << h;
    }
  }
}

TEST(DTypeTest, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go
  // to the even mantissa, i.e. 1.
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3*2^-8 ties between 1+2^-7 (odd) and 1+2^-6 (even): goes up.
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256 + 1e-6f), 0x3f81);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(DTypeTest, NamesRoundTrip) {
  EXPECT_EQ(parse_dtype("BF16"), DType::kBF16);
  EXPECT_EQ(parse_dtype("float32"), DType::kF32);
  EXPECT_FALSE(parse_dtype("int3").has_value());
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
}

}  // namespace
}  // namespace r1
