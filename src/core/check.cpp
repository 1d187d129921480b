#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace r1::detail {

void check_failed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "r1serve: invariant broken at %s:%d: %s %s\n", file, line, cond, msg);
  std::fflush(stderr);
  std::abort();
}

}  // namespace r1::detail
