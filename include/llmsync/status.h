// Status and Result<T>: how every llmsync operation reports an expected failure.
//
// A Status is either OK or an error code with a human-readable message. Result<T> holds either a
// value or a non-OK Status. Expected failures (bad input, not found, conflict, corruption) travel
// as values; exceptions are reserved for the HTTP and CLI boundaries, where they become errors
// for the user.
//
// Thread safety: both types are values. Distinct objects may be used from distinct threads;
// a single object needs external synchronization if one thread mutates it.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace llmsync {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller sent something malformed or out of range
  kNotFound,           // the named thing does not exist (or belongs to another tenant)
  kConflict,           // a precondition such as expect_head no longer holds
  kAlreadyExists,      // creating something whose name is taken
  kResourceExhausted,  // a quota, budget or size limit was hit
  kDataLoss,           // stored data is corrupt or truncated
  kUnavailable,        // a dependency is down or shutting down; retrying may help
  kInternal,           // a bug or an unexpected system failure
  kCancelled,          // the operation was cancelled by its owner
  kUnimplemented,      // the feature exists in the format but not in llmsync
};

// Stable lower_snake name of a code, as used in JSON error bodies ("not_found").
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status Conflict(std::string msg) { return {StatusCode::kConflict, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) {
    return {StatusCode::kResourceExhausted, std::move(msg)};
  }
  static Status DataLoss(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
  static Status Unimplemented(std::string msg) { return {StatusCode::kUnimplemented, std::move(msg)}; }

  bool IsOk() const { return code_ == StatusCode::kOk; }
  StatusCode Code() const { return code_; }
  const std::string& Message() const { return message_; }

  // "not_found: session 1f2e... does not exist", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a T or a non-OK Status. Accessing the value of an error Result is a programmer error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    // REQUIRES: !status.IsOk(); an OK status carries no value.
    assert(!std::get<Status>(state_).IsOk());
    if (std::get<Status>(state_).IsOk()) {
      state_ = Status::Internal("Result constructed from an OK status without a value");
    }
  }

  bool IsOk() const { return std::holds_alternative<T>(state_); }

  // The error, or OK when a value is held.
  Status GetStatus() const { return IsOk() ? Status::Ok() : std::get<Status>(state_); }

  // REQUIRES: IsOk().
  const T& Value() const& { return std::get<T>(state_); }
  T& Value() & { return std::get<T>(state_); }
  T&& Value() && { return std::get<T>(std::move(state_)); }
  const T& operator*() const& { return Value(); }
  T& operator*() & { return Value(); }
  const T* operator->() const { return &Value(); }
  T* operator->() { return &Value(); }

  T ValueOr(T fallback) const& { return IsOk() ? Value() : std::move(fallback); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace llmsync

#define LLMSYNC_CONCAT_INNER(a, b) a##b
#define LLMSYNC_CONCAT(a, b) LLMSYNC_CONCAT_INNER(a, b)

// Evaluates `expr` (a Status) and returns it from the enclosing function when it is an error.
#define LLMSYNC_RETURN_IF_ERROR(expr)                          \
  do {                                                         \
    ::llmsync::Status llmsync_status_tmp = (expr);             \
    if (!llmsync_status_tmp.IsOk()) return llmsync_status_tmp; \
  } while (false)

// `LLMSYNC_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define LLMSYNC_ASSIGN_OR_RETURN(lhs, expr) \
  LLMSYNC_ASSIGN_OR_RETURN_IMPL(LLMSYNC_CONCAT(llmsync_result_, __LINE__), lhs, expr)
#define LLMSYNC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.IsOk()) return tmp.GetStatus();            \
  lhs = std::move(tmp).Value()
