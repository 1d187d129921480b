#include "format/gguf_blocks.h"

#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "format/gguf.h"

namespace r1 {

namespace {

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q8_0: d (f16), qs[32] (i8); x = d * q.
void q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// The 32 values of a Q4_0 / Q4_1 / Q5_0 / Q5_1 block: the low nibbles of
// qs[16] are elements 0..15, the high nibbles 16..31; the Q5 types add a
// fifth bit, element j's being bit j of qh (a little-endian u32);
// x = d * (q + offset) + m.
void blocks32(const uint8_t* qs, uint32_t qh, float d, int offset, float m, float* y) {
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo + offset) + m;
    y[j + 16] = d * static_cast<float>(hi + offset) + m;
  }
}

uint32_t u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Q4_0: d, qs[16], stored with +8.
void q4_0(const uint8_t* b, float* y) {
  blocks32(b + 2, 0, half(b), -8, 0.0f, y);
}

// Q4_1: d, m, qs[16]; x = d * q + m.
void q4_1(const uint8_t* b, float* y) {
  blocks32(b + 4, 0, half(b), 0, half(b + 2), y);
}

// Q5_0: d, qh, qs[16], stored with +16.
void q5_0(const uint8_t* b, float* y) {
  blocks32(b + 6, u32(b + 2), half(b), -16, 0.0f, y);
}

// Q5_1: d, m, qh, qs[16]; x = d * q + m.
void q5_1(const uint8_t* b, float* y) {
  blocks32(b + 8, u32(b + 4), half(b), 0, half(b + 2), y);
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block,
// packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, int& sc, int& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K: d, dmin, scales[12], qs[128]. Four chunks of 32 bytes, each giving
// 64 outputs: low nibbles are sub-block 2c, high nibbles 2c+1;
// x = d * sc * q - dmin * m.
void q4_k(const uint8_t* b, float* y) {
  const float d = half(b);
  const float dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int c = 0; c < 4; ++c) {
    int sc1, m1, sc2, m2;
    scale_min_k4(2 * c, scales, sc1, m1);
    scale_min_k4(2 * c + 1, scales, sc2, m2);
    const float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(sc2), min2 = dmin * static_cast<float>(m2);
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0x0F) - min1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - min2;
    q += 32;
    y += 64;
  }
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128]: Q4_K plus a fifth bit per
// element; chunk c's low-nibble sub-block takes bit 2c of qh[l], its
// high-nibble sub-block bit 2c+1.
void q5_k(const uint8_t* b, float* y) {
  const float d = half(b);
  const float dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  for (int c = 0; c < 4; ++c) {
    int sc1, m1, sc2, m2;
    scale_min_k4(2 * c, scales, sc1, m1);
    scale_min_k4(2 * c + 1, scales, sc2, m2);
    const float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(sc2), min2 = dmin * static_cast<float>(m2);
    const int bit1 = 2 * c, bit2 = 2 * c + 1;
    for (int l = 0; l < 32; ++l) {
      const int v = (ql[l] & 0x0F) + (((qh[l] >> bit1) & 1) << 4);
      y[l] = d1 * static_cast<float>(v) - min1;
    }
    for (int l = 0; l < 32; ++l) {
      const int v = (ql[l] >> 4) + (((qh[l] >> bit2) & 1) << 4);
      y[32 + l] = d2 * static_cast<float>(v) - min2;
    }
    ql += 32;
    y += 64;
  }
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8), d.
// Two halves of 128 outputs; in each, l in 0..31 gives outputs l, l+32,
// l+64 and l+96 with scales is, is+2, is+4, is+6 (is = l / 16).
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// F32, F16 and BF16 as one-element "blocks".
void f32(const uint8_t* b, float* y) {
  std::memcpy(y, b, 4);
}
void f16(const uint8_t* b, float* y) {
  *y = half(b);
}
void bf16(const uint8_t* b, float* y) {
  uint16_t h;
  std::memcpy(&h, b, 2);
  *y = bf16_to_f32(h);
}

}  // namespace

void dequantize_gguf(uint32_t type, const uint8_t* src, int64_t n, float* out) {
  const std::optional<GgmlBlock> block = ggml_block(type);
  R1_CHECK_MSG(block.has_value(), "dequantize_gguf: unsupported ggml type");
  R1_CHECK_MSG(n % block->elements == 0, "dequantize_gguf: not a whole number of blocks");
  void (*fn)(const uint8_t*, float*) = nullptr;
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      fn = f32;
      break;
    case GgmlType::kF16:
      fn = f16;
      break;
    case GgmlType::kBF16:
      fn = bf16;
      break;
    case GgmlType::kQ8_0:
      fn = q8_0;
      break;
    case GgmlType::kQ4_0:
      fn = q4_0;
      break;
    case GgmlType::kQ4_1:
      fn = q4_1;
      break;
    case GgmlType::kQ5_0:
      fn = q5_0;
      break;
    case GgmlType::kQ5_1:
      fn = q5_1;
      break;
    case GgmlType::kQ4_K:
      fn = q4_k;
      break;
    case GgmlType::kQ5_K:
      fn = q5_k;
      break;
    case GgmlType::kQ6_K:
      fn = q6_k;
      break;
  }
  R1_CHECK_MSG(fn != nullptr, "dequantize_gguf: unsupported ggml type");
  for (int64_t k = 0; k < n / block->elements; ++k) {
    fn(src + k * block->bytes, out + k * block->elements);
  }
}

}  // namespace r1
