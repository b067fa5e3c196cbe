// The OpenAI-compatible HTTP server (cpp-httplib): /v1/chat/completions, /v1/completions, /v1/models,
// /health, /metrics. HTTP threads parse JSON, render the chat template, tokenize, compile grammars and hand
// typed requests to the engine thread; JSON never enters the engine.
//
//   TAILOR_ASSIGN_OR_RETURN(auto server, Server::create(std::move(model), dir, opt));
//   TAILOR_ASSIGN_OR_RETURN(int port, server->bind());   // opt.port = 0 picks a free port
//   server->listen();                                    // blocks until stop()
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/load.h"

namespace tailor {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (bind() says which)
  std::string api_key;      // non-empty: every route but /health needs "Authorization: Bearer KEY"
  std::string model_name;   // the id clients send as "model"; empty: the folder's name
  int http_threads = 0;     // 0: slots + queue + 8, so queued requests, /health and /metrics get a thread
  int max_queue = -1;       // requests waiting for a slot before 503; -1: 4 x slots (at least 16)
  int prefill_chunk = 512;  // prompt tokens per engine step
  size_t max_body_bytes = size_t{8} << 20;
  int default_max_tokens = 1024;  // when a request sets no max_tokens (capped by the context)
  int max_prompts = 64;           // prompts in one /v1/completions request
  int read_timeout_s = 10;        // a client that sends nothing for this long is dropped (slowloris)
  int keep_alive_s = 5;
};

class Server {
 public:
  // `model` must have a tokenizer; its runner's n_slots is the batch size. `model_dir` holds the chat
  // template (tokenizer_config.json or chat_template.jinja); without one, /v1/chat/completions answers 400.
  static Result<std::unique_ptr<Server>> create(LoadedModel model, const std::string& model_dir,
                                                const ServerOptions& opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port (the chosen one when port = 0).
  Result<int> bind();
  // Serves until stop() (call bind() first). Returns false when the listener failed.
  bool listen();
  // Stops accepting, ends running requests (their clients see the stream end) and stops the engine.
  void stop();

  int port() const;
  const std::string& model_name() const;
  Engine& engine();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor
