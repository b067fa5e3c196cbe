// Status / Result<T>: how every user-facing failure travels (loading, parsing, request validation).
// Messages name the thing (file, tensor, field) and the fix. Invariants use TAILOR_CHECK instead.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace tailor {

enum class ErrorCode {
  ok = 0,
  invalid_argument,  // the caller's input is wrong (flag, request field, schema)
  not_found,         // a file, tensor, model or token does not exist
  corrupt,           // a file exists but its bytes are wrong (truncated, bad header)
  unsupported,       // valid input we do not handle (architecture, dtype, keyword)
  out_of_memory,     // does not fit (plan refusal, allocation failure)
  io,                // the OS refused (open, read, mmap)
  internal,          // a bug in tailor
  cancelled,
};

const char* error_code_name(ErrorCode c);

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return {}; }

  bool ok() const { return code_ == ErrorCode::ok; }
  const Status& status() const { return *this; }  // so Status and Result<T> read alike in macros
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Prefixes context ("model.safetensors: ") to the message; no-op on ok.
  Status with_context(const std::string& ctx) const {
    if (ok()) return *this;
    return Status(code_, ctx + message_);
  }

 private:
  ErrorCode code_ = ErrorCode::ok;
  std::string message_;
};

// Concatenates streamable values: cat("tensor ", name, " has ", n, " bytes").
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

inline Status invalid_argument(std::string m) {
  return {ErrorCode::invalid_argument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {ErrorCode::not_found, std::move(m)};
}
inline Status corrupt(std::string m) {
  return {ErrorCode::corrupt, std::move(m)};
}
inline Status unsupported(std::string m) {
  return {ErrorCode::unsupported, std::move(m)};
}
inline Status out_of_memory(std::string m) {
  return {ErrorCode::out_of_memory, std::move(m)};
}
inline Status io_error(std::string m) {
  return {ErrorCode::io, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {ErrorCode::internal, std::move(m)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) v_ = Status(ErrorCode::internal, "Result constructed from an ok Status");
  }
  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return checked(); }
  const T& value() const& { return const_cast<Result*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->checked(); }
  T& operator*() { return checked(); }

 private:
  T& checked() {
    if (!ok()) {
      std::fprintf(stderr, "tailor: fatal: value() of a failed Result: %s\n",
                   std::get<Status>(v_).message().c_str());
      std::abort();
    }
    return std::get<T>(v_);
  }
  std::variant<T, Status> v_;
};

namespace detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
struct CheckMessage {
  const char* file;
  int line;
  const char* cond;
  std::ostringstream os;
  template <class T>
  CheckMessage& operator<<(const T& v) {
    os << v;
    return *this;
  }
  [[noreturn]] ~CheckMessage() noexcept(false) { check_failed(file, line, cond, os.str()); }
};
}  // namespace detail

}  // namespace tailor

// Always-on invariant check: TAILOR_CHECK(n > 0) << "n=" << n;
#define TAILOR_CHECK(cond)           \
  if (cond) {                        \
  } else                             \
    ::tailor::detail::CheckMessage { \
      __FILE__, __LINE__, #cond, {}  \
    }
#ifdef NDEBUG
#define TAILOR_DCHECK(cond)          \
  if (true) {                        \
  } else                             \
    ::tailor::detail::CheckMessage { \
      __FILE__, __LINE__, #cond, {}  \
    }
#else
#define TAILOR_DCHECK(cond) TAILOR_CHECK(cond)
#endif

#define TAILOR_CONCAT_INNER(a, b) a##b
#define TAILOR_CONCAT(a, b) TAILOR_CONCAT_INNER(a, b)

// Returns early with the Status of a failed expression (a Status or a Result<T>).
#define TAILOR_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    const auto& _tailor_st = (expr);                  \
    if (!_tailor_st.ok()) return _tailor_st.status(); \
  } while (0)

// TAILOR_ASSIGN_OR_RETURN(auto x, make_x());
#define TAILOR_ASSIGN_OR_RETURN(lhs, expr) \
  TAILOR_ASSIGN_OR_RETURN_IMPL(TAILOR_CONCAT(_tailor_r, __LINE__), lhs, expr)
#define TAILOR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
