#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tailor {

namespace {
LogLevel initial_level() {
  const char* e = std::getenv("TAILOR_LOG");
  if (!e) return LogLevel::info;
  if (!std::strcmp(e, "debug")) return LogLevel::debug;
  if (!std::strcmp(e, "warn")) return LogLevel::warn;
  if (!std::strcmp(e, "error")) return LogLevel::error;
  if (!std::strcmp(e, "quiet")) return LogLevel::quiet;
  return LogLevel::info;
}
std::atomic<LogLevel> g_level{initial_level()};
std::mutex g_mu;
}  // namespace

void set_log_level(LogLevel l) {
  g_level = l;
}
LogLevel log_level() {
  return g_level;
}

void log_message(LogLevel l, const std::string& msg) {
  static const char* kTag[] = {"debug", "info", "warning", "error", ""};
  std::lock_guard<std::mutex> lk(g_mu);
  std::fprintf(stderr, "tailor: %s: %s\n", kTag[int(l)], msg.c_str());
}

}  // namespace tailor
