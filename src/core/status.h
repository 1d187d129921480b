// Status and Result<T>: how outside-input errors travel. No exceptions cross a
// module boundary; every fallible operation on files, JSON, tokens or requests
// returns one of these with a message a user can act on.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace r1 {

// The code decides how the API layer answers (HTTP status); the message says why.
enum class StatusCode {
  kOk,
  kInvalidArgument,    // malformed input: 400
  kNotFound,           // missing file, tensor, model: 404 / load error
  kOutOfRange,         // sizes, offsets, positions past a limit: 400/413
  kDataLoss,           // corrupt or truncated file
  kUnimplemented,      // unknown architecture, dtype, template
  kResourceExhausted,  // out of memory / blocks / rate: 429
  kUnavailable,        // not ready, draining: 503
  kInternal,           // a bug: 500
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NOT_FOUND: file x missing"
  std::string to_string() const;

  // Prefixes context: Status(kNotFound, "x").with_context("loading y") ->
  // "loading y: x".
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status ok_status() {
  return Status();
}
inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status out_of_range(std::string m) {
  return {StatusCode::kOutOfRange, std::move(m)};
}
inline Status data_loss(std::string m) {
  return {StatusCode::kDataLoss, std::move(m)};
}
inline Status unimplemented(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status resource_exhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace r1

#define R1_CONCAT_INNER_(a, b) a##b
#define R1_CONCAT_(a, b) R1_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define R1_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::r1::Status r1_status_ = (expr);        \
    if (!r1_status_.ok()) return r1_status_; \
  } while (0)

// R1_ASSIGN_OR_RETURN(auto x, make_x()); returns the error Status if any.
#define R1_ASSIGN_OR_RETURN(lhs, expr) \
  R1_ASSIGN_OR_RETURN_IMPL_(R1_CONCAT_(r1_result_, __LINE__), lhs, expr)
#define R1_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
