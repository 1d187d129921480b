// libFuzzer target: parse_gguf on arbitrary bytes, then dequantisation of
// every tensor it accepts. It must return a Status for every input, never
// crash or read outside the input (ASan watches the exact-size buffer), and
// every tensor it accepts must lie inside the input with the byte count its
// type and shape imply.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "format/gguf.h"
#include "format/gguf_blocks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = r1::parse_gguf(data, size, "fuzz");
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) std::abort();  // every error explains itself
    return 0;
  }
  const uint8_t* end = data + size;
  std::vector<float> values;
  for (const r1::GgufTensor& t : parsed->tensors) {
    if (t.data < data || t.data + t.n_bytes > end) std::abort();
    const auto block = r1::ggml_block(t.type);
    if (!block) std::abort();
    if (static_cast<size_t>(t.n_elements() / block->elements * block->bytes) != t.n_bytes) {
      std::abort();
    }
    // Small tensors only: a valid header may describe gigabytes of zeros.
    if (block->readable && t.n_elements() <= 1 << 16) {
      values.resize(static_cast<size_t>(t.n_elements()));
      r1::dequantize_gguf(t.type, t.data, t.n_elements(), values.data());
    }
  }
  return 0;
}
