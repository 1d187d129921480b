// How deeply a JSON text nests arrays and objects, read lexically without
// parsing it, so that a body nested deep enough to exhaust a recursive walk
// (a copy, a dump, a destructor) is refused before anything builds it.
#pragma once

#include <string_view>

namespace r1 {

// The deepest nesting of '[' and '{' in `text`, skipping the contents of
// strings (with their escapes), or `limit` + 1 as soon as it goes past
// `limit`. Not a validator: unbalanced or malformed text gets a depth too,
// and the parser that runs afterwards rejects it.
int json_nesting_depth(std::string_view text, int limit);

}  // namespace r1
