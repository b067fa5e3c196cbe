// Internals shared by the server's source files (not part of the module's interface).
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "engine/grammar_constraint.h"
#include "server/api.h"
#include "server/server.h"
#include "tokenizer/chat_template/chat_template.h"

namespace tailor {

// HTTP request counters by route and status, for /metrics.
class HttpCounters {
 public:
  void add(const std::string& route, int status);
  std::map<std::pair<std::string, int>, uint64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
};

struct Server::Impl {
  ServerOptions opt;
  LoadedModel model;
  std::string model_dir;
  std::optional<ChatTemplateConfig> template_cfg;
  std::optional<ChatTemplate> chat_template;
  std::string template_error;  // why chat is unavailable, when chat_template is empty
  std::unique_ptr<GrammarFactory> grammars;
  std::unique_ptr<Engine> engine;
  httplib::Server http;
  int port = -1;
  int listen_fd = -1;   // the listening socket (from httplib's socket-options hook)
  int64_t created = 0;  // unix time the server started (for /v1/models)
  std::atomic<uint64_t> next_id{1};
  HttpCounters counters;

  void setup_routes();
  void handle_chat(const httplib::Request& req, httplib::Response& res);
  void handle_completions(const httplib::Request& req, httplib::Response& res);
  void handle_metrics(httplib::Response& res);
  std::string new_id(const char* prefix);
};

// Writes the OpenAI error JSON with its status (and Retry-After for 503).
void send_error(httplib::Response& res, const api::ApiError& e);
// Serialises without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump_json(const OrderedJson& j);
// Prometheus text exposition of the engine's and the HTTP layer's metrics.
std::string render_metrics(const Engine& engine, const HttpCounters& http, const GrammarFactory* grammars);

}  // namespace tailor
