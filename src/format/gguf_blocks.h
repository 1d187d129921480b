// Dequantisation of GGUF tensor rows: the scalar reference for every type
// r1serve reads (ggml_block's `readable`), written from ggml's published block layouts
// (ggml-common.h; ../shared/reference/model-facts.md §4.2). F32, F16 and
// BF16 are widened; Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 are blocks of 32 with an
// f16 scale (and min); Q2_K, Q3_K, Q4_K, Q5_K and Q6_K are super-blocks of
// 256.
#pragma once

#include <cstdint>

namespace r1 {

// Writes the `n` values stored at `src` as ggml type `type` to out[0..n).
// `n` must be a whole number of the type's blocks (parse_gguf checks every
// row); `type` must be one ggml_block() calls readable. Checked with
// R1_CHECK.
void dequantize_gguf(uint32_t type, const uint8_t* src, int64_t n, float* out);

}  // namespace r1
