// Error bodies and the Status -> HTTP status mapping (DESIGN.md §5).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api/errors.h"

namespace r1 {
namespace {

using json = nlohmann::json;

TEST(ApiErrorsTest, StatusCodeMapping) {
  EXPECT_EQ(http_status_for(StatusCode::kOk), 200);
  EXPECT_EQ(http_status_for(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(StatusCode::kOutOfRange), 400);
  EXPECT_EQ(http_status_for(StatusCode::kUnimplemented), 400);
  EXPECT_EQ(http_status_for(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(http_status_for(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(StatusCode::kInternal), 500);
  EXPECT_EQ(http_status_for(StatusCode::kDataLoss), 500);
}

TEST(ApiErrorsTest, BodyShape) {
  ApiError e = bad_request("temperature must be a number, got a string", "temperature");
  EXPECT_EQ(e.http_status, 400);
  json want = json::parse(R"({"error": {"message": "temperature must be a number, got a string",
                                       "type": "invalid_request_error",
                                       "param": "temperature", "code": null}})");
  EXPECT_EQ(error_json(e), want);
  EXPECT_EQ(json::parse(error_body(e)), want);
}

TEST(ApiErrorsTest, NullParamAndCode) {
  json body = error_json(internal("boom"));
  EXPECT_EQ(body["error"]["type"], "server_error");
  EXPECT_TRUE(body["error"]["param"].is_null());
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_EQ(body["error"].size(), 4u);
}

TEST(ApiErrorsTest, Builders) {
  EXPECT_EQ(unauthorized("no key").http_status, 401);
  EXPECT_EQ(unauthorized("no key").type, "authentication_error");
  EXPECT_EQ(forbidden("role").http_status, 403);
  EXPECT_EQ(forbidden("role").type, "permission_error");
  ApiError nf = model_not_found("gpt-x");
  EXPECT_EQ(nf.http_status, 404);
  EXPECT_EQ(nf.param, "model");
  EXPECT_EQ(nf.code, "model_not_found");
  EXPECT_NE(nf.message.find("gpt-x"), std::string::npos);
  ApiError big = prompt_too_long(5000, 4096);
  EXPECT_EQ(big.http_status, 413);
  EXPECT_EQ(big.code, "context_length_exceeded");
  EXPECT_NE(big.message.find("4096"), std::string::npos);
  ApiError full = queue_full(2);
  EXPECT_EQ(full.http_status, 429);
  EXPECT_EQ(full.type, "rate_limit_error");
  EXPECT_EQ(full.retry_after_seconds, 2);
  EXPECT_EQ(rate_limited("slow down", 7).retry_after_seconds, 7);
  EXPECT_EQ(not_ready("draining").http_status, 503);
}

TEST(ApiErrorsTest, FromStatus) {
  ApiError e = api_error(resource_exhausted("KV cache full"));
  EXPECT_EQ(e.http_status, 429);
  EXPECT_EQ(e.message, "KV cache full");
  EXPECT_EQ(api_error(unavailable("draining")).http_status, 503);
  EXPECT_EQ(api_error(invalid_argument("x"), "messages").param, "messages");
  EXPECT_EQ(api_error(ok_status()).http_status, 500);
}

TEST(ApiErrorsTest, InvalidUtf8InMessageDoesNotThrow) {
  std::string body = error_body(bad_request("bad \xff byte"));
  EXPECT_NE(body.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
}

}  // namespace
}  // namespace r1
