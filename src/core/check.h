// Invariant checks. R1_CHECK is always on: a broken invariant is a bug and
// crashes loudly with file, line and the condition. Never use it for outside
// input (that returns a Status). R1_DCHECK is compiled out of release builds.
#pragma once

namespace r1::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const char* msg);
}  // namespace r1::detail

#define R1_CHECK(cond)                                                      \
  do {                                                                      \
    if (!(cond)) ::r1::detail::check_failed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define R1_CHECK_MSG(cond, msg)                                              \
  do {                                                                       \
    if (!(cond)) ::r1::detail::check_failed(__FILE__, __LINE__, #cond, msg); \
  } while (0)

#ifdef NDEBUG
#define R1_DCHECK(cond) \
  do {                  \
  } while (0)
#else
#define R1_DCHECK(cond) R1_CHECK(cond)
#endif
