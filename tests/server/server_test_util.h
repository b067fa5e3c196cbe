// Helpers for the server tests: the shared random-weight test model, an in-process server on a free loopback
// port, raw sockets (for clients that hang up or misbehave), SSE parsing and JSON Schema validation.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "server/server.h"

namespace tailor::testing {

// The tiny Qwen3 preset with the real Qwen3 tokenizer, generated once under the build folder.
const std::string& test_model_dir();

struct ServerConfig {
  int parallel = 4;
  int n_ctx = 1024;
  ServerOptions opt;  // port is forced to 0
};

class TestServer {
 public:
  static std::unique_ptr<TestServer> start(ServerConfig cfg = {});
  ~TestServer();
  int port() const { return port_; }
  Server& server() { return *server_; }
  std::unique_ptr<httplib::Client> client(int read_timeout_s = 60) const;
  const std::string& model() const { return server_->model_name(); }

  // POST JSON; returns {status, parsed body (null when not JSON)}.
  struct Reply {
    int status = 0;
    Json body;
    std::string raw;
    std::string retry_after;
  };
  Reply post(const std::string& path, const Json& body, const std::string& api_key = "") const;
  Reply post_raw(const std::string& path, const std::string& body, const std::string& api_key = "") const;
  Reply get(const std::string& path, const std::string& api_key = "") const;
  // One value from /metrics ("tailor_slots_active", or with labels:
  // tailor_requests_finished_total{reason="cancelled"}).
  double metric(const std::string& series) const;

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// A blocking loopback TCP connection for hand-written HTTP.
class RawConn {
 public:
  explicit RawConn(int port);
  ~RawConn();
  bool ok() const { return fd_ >= 0; }
  bool send_all(const std::string& s);
  // Reads what is available within timeout_ms (empty on timeout or EOF).
  std::string recv_some(int timeout_ms);
  // Reads until `needle` appears or timeout; returns everything read.
  std::string recv_until(const std::string& needle, int timeout_ms);
  void close();

 private:
  int fd_ = -1;
};

// POSTs and streams the response body to on_data as it arrives (chunked transfer decoded). on_data returning
// false hangs up. Returns the HTTP status (0 when the connection failed or was dropped by us).
int stream_post(int port, const std::string& path, const std::string& body,
                const std::function<bool(const std::string&)>& on_data);

// "data: ..." payloads of an SSE body, in order.
std::vector<std::string> sse_data(const std::string& body);

// "" when instance_json validates against schema_json (valijson, draft 7), else the first error.
std::string valijson_error(const std::string& schema_json, const std::string& instance_json);

}  // namespace tailor::testing
