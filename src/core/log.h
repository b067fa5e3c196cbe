// Minimal leveled logging to stderr (stdout is reserved for generated text and machine-readable output).
#pragma once

#include <string>

#include "core/status.h"

namespace tailor {

enum class LogLevel { debug = 0, info, warn, error, quiet };
void set_log_level(LogLevel l);
LogLevel log_level();
void log_message(LogLevel l, const std::string& msg);

template <class... A>
void log_debug(const A&... a) {
  if (log_level() <= LogLevel::debug) log_message(LogLevel::debug, cat(a...));
}
template <class... A>
void log_info(const A&... a) {
  if (log_level() <= LogLevel::info) log_message(LogLevel::info, cat(a...));
}
template <class... A>
void log_warn(const A&... a) {
  if (log_level() <= LogLevel::warn) log_message(LogLevel::warn, cat(a...));
}
template <class... A>
void log_error(const A&... a) {
  if (log_level() <= LogLevel::error) log_message(LogLevel::error, cat(a...));
}

}  // namespace tailor
