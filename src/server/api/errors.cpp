#include "server/api/errors.h"

#include "server/api/openai_response.h"

namespace r1 {

int http_status_for(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnimplemented:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view error_type_for(int http_status) {
  switch (http_status) {
    case 400:
    case 404:
    case 413:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      return "server_error";
  }
}

namespace {

ApiError make(int status, std::string message, std::string param = "", std::string code = "") {
  ApiError e;
  e.http_status = status;
  e.type = std::string(error_type_for(status));
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

}  // namespace

ApiError api_error(const Status& status, std::string param) {
  int http = status.ok() ? 500 : http_status_for(status.code());
  std::string message =
      status.ok() ? "internal error: ok status reported as an error" : status.message();
  return make(http, std::move(message), std::move(param));
}

ApiError bad_request(std::string message, std::string param, std::string code) {
  return make(400, std::move(message), std::move(param), std::move(code));
}

ApiError unauthorized(std::string message) {
  return make(401, std::move(message), "", "invalid_api_key");
}

ApiError forbidden(std::string message) {
  return make(403, std::move(message));
}

ApiError model_not_found(std::string_view model) {
  return make(404, "The model '" + std::string(model) + "' does not exist", "model",
              "model_not_found");
}

ApiError prompt_too_long(int64_t n_prompt_tokens, int64_t context_len) {
  return make(413,
              "This model's maximum context length is " + std::to_string(context_len) +
                  " tokens, but the prompt has " + std::to_string(n_prompt_tokens) +
                  " tokens. Shorten the prompt.",
              "", "context_length_exceeded");
}

ApiError rate_limited(std::string message, int retry_after_seconds) {
  ApiError e = make(429, std::move(message), "", "rate_limit_exceeded");
  e.retry_after_seconds = retry_after_seconds;
  return e;
}

ApiError queue_full(int retry_after_seconds) {
  ApiError e = make(429, "The server's request queue is full; retry later", "", "queue_full");
  e.retry_after_seconds = retry_after_seconds;
  return e;
}

ApiError not_ready(std::string message, int retry_after_seconds) {
  ApiError e = make(503, std::move(message));
  e.retry_after_seconds = retry_after_seconds;
  return e;
}

ApiError conflict(std::string message, std::string code) {
  return make(409, std::move(message), "", std::move(code));
}

ApiError replica_interrupted(const std::string& how) {
  ApiError e = make(503, "This replica is going away; the generation was checkpointed. " + how, "",
                    "replica_interrupted");
  e.retry_after_seconds = 1;
  return e;
}

ApiError internal(std::string message) {
  return make(500, std::move(message));
}

nlohmann::json error_json(const ApiError& error) {
  nlohmann::json body;
  body["message"] = error.message;
  body["type"] = error.type.empty() ? std::string(error_type_for(error.http_status)) : error.type;
  body["param"] = error.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param);
  body["code"] = error.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.code);
  return nlohmann::json{{"error", std::move(body)}};
}

std::string error_body(const ApiError& error) {
  return to_json_text(error_json(error));
}

HttpResponse json_response(const nlohmann::json& body, int status) {
  HttpResponse res;
  res.status = status;
  res.body = to_json_text(body);
  return res;
}

HttpResponse error_response(const ApiError& error) {
  HttpResponse res;
  res.status = error.http_status;
  res.body = error_body(error);
  if (error.retry_after_seconds > 0) {
    res.headers["Retry-After"] = std::to_string(error.retry_after_seconds);
  }
  return res;
}

}  // namespace r1
