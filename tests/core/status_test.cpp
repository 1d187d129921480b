#include "core/status.h"

#include <gtest/gtest.h>

namespace r1 {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("x must be positive, got " + std::to_string(x));
  return x * 2;
}

Result<int> twice(int x) {
  R1_ASSIGN_OR_RETURN(int y, parse_positive(x));
  return y * 2;
}

Status check_all(int a, int b) {
  R1_RETURN_IF_ERROR(parse_positive(a).status());
  R1_RETURN_IF_ERROR(parse_positive(b).status());
  return ok_status();
}

TEST(StatusTest, PropagatesFirstErrorWithMessage) {
  EXPECT_EQ(*twice(3), 12);
  auto r = twice(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "x must be positive, got -1");
  Status s = check_all(1, 0);
  EXPECT_EQ(s.to_string(), "INVALID_ARGUMENT: x must be positive, got 0");
  EXPECT_TRUE(check_all(1, 2).ok());
}

TEST(StatusTest, ContextIsPrefixed) {
  Status s = not_found("no such file").with_context("loading /m");
  EXPECT_EQ(s.message(), "loading /m: no such file");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(ok_status().with_context("x").ok());
}

}  // namespace
}  // namespace r1
