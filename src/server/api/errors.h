// OpenAI-shaped API errors: {"error": {"message", "type", "param", "code"}}
// and the HTTP status each kind of failure answers with (DESIGN.md §5).
// Everything the API layer can refuse travels as an ApiError; handlers turn
// it into a response body with error_body().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "server/http/http_server.h"

namespace r1 {

struct ApiError {
  int http_status = 500;
  std::string type;     // OpenAI's error type, e.g. "invalid_request_error"
  std::string message;  // what the user can do about it
  std::string param;    // the offending request field; empty -> null
  std::string code;     // machine-readable reason; empty -> null
  // Seconds for a Retry-After header (429, 503); 0 = no header.
  int retry_after_seconds = 0;
};

// The HTTP status for a Status code: kInvalidArgument and kOutOfRange 400,
// kUnimplemented 400 (the request asks for something this server does not
// do), kNotFound 404, kResourceExhausted 429, kUnavailable 503, kDataLoss and
// kInternal 500. kOk is 200. 413 is never derived from a code alone: use
// prompt_too_long().
int http_status_for(StatusCode code);

// The OpenAI type string for an HTTP status: 400/404/413
// "invalid_request_error", 401 "authentication_error", 403 "permission_error",
// 429 "rate_limit_error", 503 "service_unavailable_error", else "server_error".
std::string_view error_type_for(int http_status);

// An ApiError from a non-ok Status, keeping its message.
ApiError api_error(const Status& status, std::string param = "");

// Builders for the errors the API layer itself raises.
ApiError bad_request(std::string message, std::string param = "", std::string code = "");
ApiError unauthorized(std::string message);        // 401, code "invalid_api_key"
ApiError forbidden(std::string message);           // 403
ApiError model_not_found(std::string_view model);  // 404, param "model", code "model_not_found"
// 413, code "context_length_exceeded".
ApiError prompt_too_long(int64_t n_prompt_tokens, int64_t context_len);
ApiError rate_limited(std::string message, int retry_after_seconds);  // 429
ApiError queue_full(int retry_after_seconds);                         // 429, code "queue_full"
// 503 with Retry-After: loading, shutting down, or drained by an operator.
// A client (or the balancer in front) should try again elsewhere or later.
ApiError not_ready(std::string message, int retry_after_seconds = 5);
ApiError internal(std::string message);  // 500
// 409 with `code`: the request conflicts with state the server holds.
ApiError conflict(std::string message, std::string code);
// 503, code "replica_interrupted": the replica is going away and has
// checkpointed the generation; `how` says how to resume it elsewhere.
ApiError replica_interrupted(const std::string& how);

// {"error": {"message", "type", "param", "code"}}; param and code are null when
// empty.
nlohmann::json error_json(const ApiError& error);
// error_json() as text (invalid UTF-8 in a message is replaced, never thrown).
std::string error_body(const ApiError& error);

// Either a value or the ApiError that refuses the request.
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const ApiError& error() const { return std::get<ApiError>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, ApiError> v_;
};

// An OpenAI-shaped error response (Retry-After when the error carries one).
HttpResponse error_response(const ApiError& error);
// A JSON body with `status`: every route's non-error answer.
HttpResponse json_response(const nlohmann::json& body, int status = 200);

}  // namespace r1
