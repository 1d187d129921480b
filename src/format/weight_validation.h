// Checks a folder's tensors against what its config.json implies, before any
// byte is bound to the model, so a wrong or damaged checkpoint fails with a
// message naming the tensor instead of garbage output.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "format/model_config.h"
#include "format/safetensors.h"

namespace r1 {

// Every tensor of expected_tensors(config) must be in `files`, with exactly the
// expected shape and a float dtype (F32, F16 or BF16):
//   missing     -> NOT_FOUND "tensor model.layers.3.mlp.up_proj.weight: missing from <source>"
//   wrong shape -> INVALID_ARGUMENT "tensor ...: shape [8960, 1536] expected, file has [8960,
//   1535]" wrong dtype -> INVALID_ARGUMENT "tensor ...: dtype I8 is not a float type (F32, F16,
//   BF16)"
// The first problem is returned, with a count of the others ("(and 4 more
// problems)"). Tensors the config does not expect (e.g. rotary inv_freq
// buffers) are not errors; when `unexpected` is given, their names are stored
// there, sorted.
Status validate_weights(const ModelConfig& config, const WeightFiles& files,
                        std::vector<std::string>* unexpected = nullptr);

}  // namespace r1
