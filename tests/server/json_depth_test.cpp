// json_nesting_depth: hand-derived depths, strings and escapes skipped, the
// early stop past the limit, and agreement with the nesting nlohmann's
// parser finds on valid JSON.
#include "server/http/json_depth.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

namespace r1 {
namespace {

TEST(JsonDepth, HandDerived) {
  EXPECT_EQ(json_nesting_depth("", 64), 0);
  EXPECT_EQ(json_nesting_depth("1", 64), 0);
  EXPECT_EQ(json_nesting_depth(R"("text")", 64), 0);
  EXPECT_EQ(json_nesting_depth("[]", 64), 1);
  EXPECT_EQ(json_nesting_depth("{}", 64), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": [[]]}], "c": {}})", 64), 5);
  // Siblings do not add up.
  EXPECT_EQ(json_nesting_depth("[[1], [2], [[3]]]", 64), 3);
}

TEST(JsonDepth, StringsAndEscapesAreSkipped) {
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[{{{{"})", 64), 1);
  EXPECT_EQ(json_nesting_depth(R"(["\"[[[", "\\", [1]])", 64), 2);
  EXPECT_EQ(json_nesting_depth(R"(["\\\"[[", [[0]]])", 64), 3);
  // A string that never closes hides what follows.
  EXPECT_EQ(json_nesting_depth(R"(["abc [[[[)", 64), 1);
}

TEST(JsonDepth, StopsPastTheLimit) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(json_nesting_depth(deep, 64), 65);
  EXPECT_EQ(json_nesting_depth(deep, 100000), 100000);
  EXPECT_EQ(json_nesting_depth(std::string(64, '{'), 64), 64);
  // Unbalanced closers never go below zero.
  EXPECT_EQ(json_nesting_depth("]]]][[", 64), 2);
}

// The deepest container nlohmann builds from the same text.
int parsed_depth(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, parsed_depth(child));
  return deepest + 1;
}

TEST(JsonDepth, AgreesWithTheParserOnValidJson) {
  for (const char* text : {
           R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "]}"}]}]})",
           R"([{"a": {"b": {"c": ["{", "\"}", {"d": []}]}}}])",
           R"({"x": "\u005b\u007b", "y": [[[["\\"]]]]})",
           R"([1, 2.5e3, true, null, "s", {}, []])",
       }) {
    EXPECT_EQ(json_nesting_depth(text, 64), parsed_depth(nlohmann::json::parse(text))) << text;
  }
}

}  // namespace
}  // namespace r1
