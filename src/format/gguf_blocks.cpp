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

// Q2_K and Q3_K share one arrangement of a super-block's 256 values: two
// halves of 128, each reading 32 bytes of 2-bit quants four times (shifts
// 0, 2, 4, 6). Pass j of half n gives values n*128 + 32j + [0, 16) from
// bytes [0, 16) of the half and values n*128 + 32j + [16, 32) from bytes
// [16, 32), with sub-block scales 8n + 2j and 8n + 2j + 1.
template <typename Value>
void k_low_bits(const uint8_t* qs, float* y, Value&& value) {
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      for (int h = 0; h < 2; ++h) {
        const int sub = 8 * n + 2 * j + h;
        for (int l = 0; l < 16; ++l) {
          const int byte = 32 * n + 16 * h + l;
          const int q = (qs[byte] >> (2 * j)) & 3;
          y[128 * n + 32 * j + 16 * h + l] = value(sub, q, 16 * h + l, 4 * n + j);
        }
      }
    }
  }
}

// Q2_K: scales[16] (low nibble: scale, high nibble: min, per 16 values),
// qs[64], d, dmin; x = d * scale * q - dmin * min.
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* sc = b;
  const float d = half(b + 80), dmin = half(b + 82);
  k_low_bits(b + 16, y, [&](int sub, int q, int, int) {
    return d * static_cast<float>(sc[sub] & 0x0F) * static_cast<float>(q) -
           dmin * static_cast<float>(sc[sub] >> 4);
  });
}

// Q3_K: hmask[32], qs[64], scales[12], d. Value v's third bit is bit
// (4n + j) of hmask[16h + l]; a clear bit subtracts 4, so q is in [-4, 3].
// The 16 six-bit scales, stored with +32: the low four bits of scale s are
// the low (s < 8) or high (s >= 8) nibble of scales[s % 8], its top two
// bits are bits 2 * (s / 4) of scales[8 + s % 4]; x = d * (scale - 32) * q.
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* sc = b + 96;
  const float d = half(b + 108);
  int scale[16];
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? sc[s] & 0x0F : sc[s - 8] >> 4;
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    scale[s] = (low | (high << 4)) - 32;
  }
  k_low_bits(b + 32, y, [&](int sub, int q, int hm_byte, int bit) {
    const int v = q - (((hmask[hm_byte] >> bit) & 1) != 0 ? 0 : 4);
    return d * static_cast<float>(scale[sub]) * static_cast<float>(v);
  });
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
  R1_CHECK_MSG(block.has_value() && block->readable, "dequantize_gguf: unsupported ggml type");
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
    case GgmlType::kQ2_K:
      fn = q2_k;
      break;
    case GgmlType::kQ3_K:
      fn = q3_k;
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
