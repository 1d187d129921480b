// libFuzzer target: parse_safetensors on arbitrary bytes. It must return a
// Status for every input, never crash or read outside the input (ASan watches
// the exact-size buffer libFuzzer hands us), and every tensor it accepts must
// lie inside the byte buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = r1::parse_safetensors(data, size, "fuzz");
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) std::abort();  // every error explains itself
    return 0;
  }
  const uint8_t* end = data + size;
  uint8_t sum = 0;
  for (const r1::TensorInfo& t : *parsed) {
    if (t.n_bytes > 0 && (t.data < data || t.data + t.n_bytes > end)) std::abort();
    if (static_cast<size_t>(t.n_elements()) * r1::dtype_size(t.dtype) != t.n_bytes) std::abort();
    // Touch every byte so ASan would flag a pointer past the input.
    for (size_t i = 0; i < t.n_bytes; ++i) sum = static_cast<uint8_t>(sum + t.data[i]);
  }
  volatile uint8_t sink = sum;
  (void)sink;
  return 0;
}
