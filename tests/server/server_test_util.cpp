#include "server_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "core/log.h"
#include "engine/load.h"
#include "server/demo.h"

namespace tailor::testing {

const std::string& test_model_dir() {
  static const std::string dir = [] {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string d = (exe.parent_path() / "server_test_model").string();
    auto r = ensure_demo_model(d);
    if (!r.ok()) {
      std::fprintf(stderr, "cannot create the test model: %s\n", r.status().message().c_str());
      std::abort();
    }
    return d;
  }();
  return dir;
}

std::unique_ptr<TestServer> TestServer::start(ServerConfig cfg) {
  set_log_level(LogLevel::warn);
  LoadOptions lo;
  lo.runner.n_ctx = cfg.n_ctx;
  lo.runner.n_slots = cfg.parallel;
  lo.device = "cpu";
  lo.need_tokenizer = true;
  lo.progress = false;
  lo.verbose = false;
  auto m = load_model(test_model_dir(), lo);
  if (!m.ok()) {
    std::fprintf(stderr, "load_model: %s\n", m.status().message().c_str());
    return nullptr;
  }
  cfg.opt.port = 0;
  cfg.opt.host = "127.0.0.1";
  auto s = Server::create(std::move(m).value(), test_model_dir(), cfg.opt);
  if (!s.ok()) {
    std::fprintf(stderr, "Server::create: %s\n", s.status().message().c_str());
    return nullptr;
  }
  std::unique_ptr<TestServer> t(new TestServer);
  t->server_ = std::move(s).value();
  auto port = t->server_->bind();
  if (!port.ok()) return nullptr;
  t->port_ = *port;
  Server* srv = t->server_.get();
  t->thread_ = std::thread([srv] { srv->listen(); });
  return t;
}

TestServer::~TestServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<httplib::Client> TestServer::client(int read_timeout_s) const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_read_timeout(read_timeout_s, 0);
  c->set_connection_timeout(5, 0);
  return c;
}

static TestServer::Reply to_reply(const httplib::Result& r) {
  TestServer::Reply out;
  if (!r) return out;
  out.status = r->status;
  out.raw = r->body;
  out.retry_after = r->get_header_value("Retry-After");
  out.body = Json::parse(r->body, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

TestServer::Reply TestServer::post_raw(const std::string& path, const std::string& body,
                                       const std::string& api_key) const {
  auto c = client();
  httplib::Headers h;
  if (!api_key.empty()) h.emplace("Authorization", "Bearer " + api_key);
  return to_reply(c->Post(path.c_str(), h, body, "application/json"));
}

TestServer::Reply TestServer::post(const std::string& path, const Json& body,
                                   const std::string& api_key) const {
  return post_raw(path, body.dump(), api_key);
}

TestServer::Reply TestServer::get(const std::string& path, const std::string& api_key) const {
  auto c = client();
  httplib::Headers h;
  if (!api_key.empty()) h.emplace("Authorization", "Bearer " + api_key);
  return to_reply(c->Get(path.c_str(), h));
}

double TestServer::metric(const std::string& series) const {
  auto c = client();
  auto r = c->Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::istringstream is(r->body);
  std::string line;
  while (std::getline(is, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

RawConn::RawConn(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) close();
}

RawConn::~RawConn() {
  close();
}

void RawConn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConn::send_all(const std::string& s) {
  size_t off = 0;
  while (fd_ >= 0 && off < s.size()) {
    ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += size_t(n);
  }
  return off == s.size();
}

std::string RawConn::recv_some(int timeout_ms) {
  if (fd_ < 0) return {};
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return {};
  char buf[8192];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

std::string RawConn::recv_until(const std::string& needle, int timeout_ms) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.find(needle) == std::string::npos && std::chrono::steady_clock::now() < end) {
    std::string s = recv_some(50);
    out += s;
  }
  return out;
}

int stream_post(int port, const std::string& path, const std::string& body,
                const std::function<bool(const std::string&)>& on_data) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    return on_data(std::string(data, n));
  };
  auto r = c.send(req);
  return r ? r->status : 0;
}

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream is(body);
  std::string line;
  while (std::getline(is, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  }
  return out;
}

std::string valijson_error(const std::string& schema_json, const std::string& instance_json) {
  try {
    nlohmann::json schema_doc = nlohmann::json::parse(schema_json);
    nlohmann::json doc = nlohmann::json::parse(instance_json);
    valijson::Schema schema;
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
    parser.populateSchema(schema_adapter, schema);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(doc);
    if (validator.validate(schema, target, &results)) return "";
    valijson::ValidationResults::Error err;
    std::string msg = "invalid";
    if (results.popError(err)) {
      std::string ctx;
      for (const std::string& c : err.context) ctx += c;
      msg = ctx + ": " + err.description;
    }
    return msg;
  } catch (const std::exception& e) {
    return std::string("not JSON or bad schema: ") + e.what();
  }
}

}  // namespace tailor::testing
