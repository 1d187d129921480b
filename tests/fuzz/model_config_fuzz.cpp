// libFuzzer target: config.json and generation_config.json parsing on
// arbitrary text. Errors must come back as Status; an accepted config must
// give tensor shapes that are positive and whose element counts fit int64.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "format/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)r1::parse_generation_config(text);
  auto config = r1::parse_model_config(text);
  if (!config.ok()) {
    if (config.status().message().empty()) std::abort();
    return 0;
  }
  if (config->n_heads % config->n_kv_heads != 0) std::abort();
  if (config->n_layers > 64) return 0;  // keep each run fast; shapes do not depend on it
  for (const r1::ExpectedTensor& t : r1::expected_tensors(*config)) {
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d <= 0 || __builtin_mul_overflow(n, d, &n)) std::abort();
    }
  }
  return 0;
}
