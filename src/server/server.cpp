#include "server/server.h"

#include <sys/socket.h>

#include <csignal>
#include <ctime>
#include <filesystem>

#include "core/log.h"
#include "server/server_impl.h"

namespace tailor {

void HttpCounters::add(const std::string& route, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++counts_[{route, status}];
}

std::map<std::pair<std::string, int>, uint64_t> HttpCounters::snapshot() const {
  std::lock_guard<std::mutex> lk(mu_);
  return counts_;
}

std::string dump_json(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

void send_error(httplib::Response& res, const api::ApiError& e) {
  res.status = e.status;
  if (e.status == 503) res.set_header("Retry-After", "1");
  res.set_content(dump_json(api::error_json(e)), "application/json");
}

std::string Server::Impl::new_id(const char* prefix) {
  // Unique per process and unpredictable enough for logs; not a secret.
  static const uint64_t salt = uint64_t(std::time(nullptr)) * 0x9E3779B97F4A7C15ull;
  const uint64_t n = next_id.fetch_add(1) ^ salt;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%016llx", prefix, static_cast<unsigned long long>(n));
  return buf;
}

static std::string route_label(const std::string& path) {
  for (const char* r : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"})
    if (path == r) return r;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

// Constant-time comparison, so the key cannot be guessed byte by byte from response times.
static bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

// Every handler runs inside this: nothing a request does may take the server down.
template <class F>
static auto guarded(F f) {
  return [f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(req, res);
    } catch (const std::exception& ex) {
      log_error("server: ", req.method, " ", req.path, ": unexpected error: ", ex.what());
      api::ApiError e{500, cat("internal error: ", ex.what()), "server_error", "", "internal_error"};
      send_error(res, e);
    } catch (...) {
      api::ApiError e{500, "internal error", "server_error", "", "internal_error"};
      send_error(res, e);
    }
  };
}

void Server::Impl::setup_routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opt.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) == 0 && same_secret(auth.substr(prefix.size()), opt.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    api::ApiError e{401,
                    auth.empty() ? "missing API key: send the header \"Authorization: Bearer YOUR_KEY\""
                                 : "invalid API key",
                    "invalid_request_error", "", "invalid_api_key"};
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own refusals (unknown route, body over the limit, bad request line) get the OpenAI error shape.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    api::ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.message = cat("no route for ", req.method, " ", req.path);
      e.code = "not_found";
    } else if (res.status == 413) {
      e.message = "the request body is too large";
      e.code = "payload_too_large";
    } else {
      e.message = cat("HTTP ", res.status);
      if (res.status >= 500) e.type = "server_error";
    }
    res.set_content(dump_json(api::error_json(e)), "application/json");
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    api::ApiError e{500, "internal error", "server_error", "", "internal_error"};
    send_error(res, e);
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    counters.add(route_label(req.path), res.status);
  });

  http.Get("/health", guarded([this](const httplib::Request&, httplib::Response& res) {
             const EngineSnapshot s = engine->snapshot();
             OrderedJson j = {{"status", "ok"},
                              {"model", opt.model_name},
                              {"slots_total", s.n_slots},
                              {"slots_active", s.active},
                              {"queue_depth", s.queue_depth}};
             res.set_content(dump_json(j), "application/json");
           }));
  auto model_json = [this] {
    return OrderedJson{{"id", opt.model_name},
                       {"object", "model"},
                       {"created", created},
                       {"owned_by", "tailor"},
                       {"meta", {{"n_ctx", engine->n_ctx()}, {"n_vocab", engine->n_vocab()}}}};
  };
  http.Get("/v1/models", guarded([model_json](const httplib::Request&, httplib::Response& res) {
             OrderedJson j = {{"object", "list"}, {"data", OrderedJson::array({model_json()})}};
             res.set_content(dump_json(j), "application/json");
           }));
  http.Get("/v1/models/(.+)",
           guarded([this, model_json](const httplib::Request& req, httplib::Response& res) {
             if (req.matches[1] != opt.model_name) {
               api::ApiError e{404,
                               cat("model '", std::string(req.matches[1]),
                                   "' does not exist; this server serves '", opt.model_name, "'"),
                               "invalid_request_error", "model", "model_not_found"};
               return send_error(res, e);
             }
             res.set_content(dump_json(model_json()), "application/json");
           }));
  http.Get("/metrics",
           guarded([this](const httplib::Request&, httplib::Response& res) { handle_metrics(res); }));
  http.Post("/v1/chat/completions",
            guarded([this](const httplib::Request& req, httplib::Response& res) { handle_chat(req, res); }));
  http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              handle_completions(req, res);
            }));
}

void Server::Impl::handle_metrics(httplib::Response& res) {
  res.set_content(render_metrics(*engine, counters, grammars.get()),
                  "text/plain; version=0.0.4; charset=utf-8");
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
}

Result<std::unique_ptr<Server>> Server::create(LoadedModel model, const std::string& model_dir,
                                               const ServerOptions& opt) {
  if (!model.runner) return invalid_argument("server: the model has no runner");
  if (!model.tokenizer)
    return not_found(cat(model_dir, ": no tokenizer.json; the server needs the model's tokenizer"));
  if (opt.max_body_bytes < 1024) return invalid_argument("server: max_body_bytes must be at least 1024");
  // A client that disconnects mid-stream must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);

  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->model_dir = model_dir;
  if (impl->opt.model_name.empty())
    impl->opt.model_name = std::filesystem::path(model_dir).lexically_normal().filename().string();
  if (impl->opt.model_name.empty() || impl->opt.model_name == ".")
    impl->opt.model_name =
        std::filesystem::path(model_dir).lexically_normal().parent_path().filename().string();
  if (impl->opt.model_name.empty()) impl->opt.model_name = "model";

  auto cfg = load_chat_template_config(model_dir);
  if (cfg.ok()) {
    impl->template_cfg = *cfg;
    auto src = cfg->select(false);
    if (src.ok()) {
      auto t = ChatTemplate::parse(*src);
      if (t.ok())
        impl->chat_template = std::move(t).value();
      else
        impl->template_error = cat("the model's chat template does not parse: ", t.status().message());
    } else {
      impl->template_error = src.status().message();
    }
  } else {
    impl->template_error = cfg.status().message();
  }
  if (!impl->chat_template) log_warn("server: /v1/chat/completions is unavailable: ", impl->template_error);

  const int n_slots = model.runner->options().n_slots;
  EngineOptions eo;
  eo.max_queue = opt.max_queue >= 0 ? opt.max_queue : std::max(16, 4 * n_slots);
  eo.prefill_chunk = opt.prefill_chunk;
  impl->opt.max_queue = eo.max_queue;
  impl->model = std::move(model);
  impl->grammars = std::make_unique<GrammarFactory>(*impl->model.tokenizer, impl->model.stop_ids,
                                                    impl->model.runner->hparams().n_vocab);
  TAILOR_ASSIGN_OR_RETURN(impl->engine, Engine::create(*impl->model.runner, impl->model.tokenizer.get(), eo));
  impl->created = int64_t(std::time(nullptr));

  const int threads = opt.http_threads > 0 ? opt.http_threads : n_slots + eo.max_queue + 8;
  impl->http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // SO_REUSEADDR (restart while old connections linger) but not httplib's default SO_REUSEPORT, which would
  // let a second server share the port silently. The fd is kept to deepen the listen backlog after bind().
  Impl* raw = impl.get();
  impl->http.set_socket_options([raw](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    raw->listen_fd = sock;
  });
  impl->http.set_tcp_nodelay(true);
  impl->http.set_keep_alive_max_count(100);
  impl->http.set_keep_alive_timeout(opt.keep_alive_s);
  impl->http.set_read_timeout(opt.read_timeout_s, 0);
  impl->http.set_write_timeout(30, 0);
  impl->http.set_payload_max_length(opt.max_body_bytes);
  impl->setup_routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<int> Server::bind() {
  Impl& m = *impl_;
  if (m.opt.port == 0) {
    m.port = m.http.bind_to_any_port(m.opt.host);
  } else {
    m.port = m.http.bind_to_port(m.opt.host, m.opt.port) ? m.opt.port : -1;
  }
  if (m.port <= 0)
    return io_error(cat("cannot listen on ", m.opt.host, ":", m.opt.port,
                        " (in use, or not an address of this machine?); pick another with --port"));
  // httplib listens with a backlog of 5: a burst of clients connecting at once overflows it and the kernel
  // drops their handshakes (they hang, then fail). listen() again on the bound socket only resizes the queue.
  if (m.listen_fd >= 0) ::listen(m.listen_fd, 1024);
  return m.port;
}

bool Server::listen() {
  return impl_->http.listen_after_bind();
}

void Server::stop() {
  if (!impl_) return;
  // The engine first: requests blocked on it end (cancelled), so the HTTP workers can be joined.
  if (impl_->engine) impl_->engine->shutdown();
  impl_->http.stop();
}

int Server::port() const {
  return impl_->port;
}
const std::string& Server::model_name() const {
  return impl_->opt.model_name;
}
Engine& Server::engine() {
  return *impl_->engine;
}

}  // namespace tailor
