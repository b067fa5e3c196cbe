// Aggregate generation throughput of the HTTP server at several concurrency levels (CPU by default).
//   bench_server_throughput [--model DIR] [--concurrency 1,8,32] [--tokens 32] [--threads N] [--device D]
//   bench_server_throughput --url HOST:PORT [--concurrency ...] [--tokens N]
// --url drives a server that is already running (llama.cpp's llama-server, for the same-run comparison)
// with exactly the same requests instead of starting tailor's. Without --model it writes the 0.5b preset
// (Qwen2.5-0.5B shape, random bf16 weights, the real Qwen tokenizer) to $TMPDIR/tailor-bench-0.5b-tok (once).
// The server runs in-process on a free loopback port with one slot per client at the highest level; C clients
// each send one /v1/completions request (max_tokens N, ignore_eos) at once, and throughput = C x N generated
// tokens / wall time from the first send to the last reply.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "core/log.h"
#include "core/mmap.h"
#include "core/thread_pool.h"
#include "engine/load.h"
#include "model/gen_model.h"
#include "server/server.h"

using namespace tailor;
using Clock = std::chrono::steady_clock;

namespace {

struct Reply {
  bool ok = false;
  int tokens = 0;
  double queue_ms = 0, prompt_ms = 0, decode_ms = 0;
  std::string error;
};

Reply complete(const std::string& host, int port, const std::string& model, int tokens, int seed) {
  httplib::Client c(host, port);
  c.set_read_timeout(3600, 0);
  Json body = {
      {"model", model},       {"prompt", "The quick brown fox jumps over the lazy dog. Once upon a time"},
      {"max_tokens", tokens}, {"ignore_eos", true},
      {"temperature", 0.8},   {"seed", seed}};
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  Reply out;
  if (!r || r->status != 200) {
    out.error = r ? r->body : "no response: " + httplib::to_string(r.error());
    return out;
  }
  Json j = Json::parse(r->body);
  out.ok = true;
  out.tokens = j["usage"]["completion_tokens"];
  if (out.tokens != tokens)
    std::fprintf(stderr, "bench: short reply (%d of %d tokens): %s\n", out.tokens, tokens, r->body.c_str());
  // tailor: timings {queue_ms, prompt_ms, decode_ms}; llama-server: timings {prompt_ms, predicted_ms}.
  const Json t = j.value("timings", Json::object());
  out.queue_ms = t.value("queue_ms", 0.0);
  out.prompt_ms = t.value("prompt_ms", 0.0);
  out.decode_ms = t.contains("decode_ms") ? t.value("decode_ms", 0.0) : t.value("predicted_ms", 0.0);
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, device = "cpu", url;
  std::vector<int> levels = {1, 8, 32};
  int tokens = 32, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") {
      model = next();
    } else if (a == "--concurrency") {
      levels.clear();
      std::stringstream ss(next());
      std::string x;
      while (std::getline(ss, x, ',')) levels.push_back(std::max(1, std::atoi(x.c_str())));
    } else if (a == "--tokens") {
      tokens = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--threads") {
      threads = std::atoi(next().c_str());
    } else if (a == "--device") {
      device = next();
    } else if (a == "--url") {
      url = next();
    } else {
      std::fprintf(
          stderr,
          "usage: bench_server_throughput [--model DIR] [--concurrency 1,8,32] [--tokens N] [--threads N] "
          "[--device cpu|cuda|auto] [--url HOST:PORT]\n");
      return 2;
    }
  }
  if (threads > 0) ThreadPool::set_global_threads(threads);
  set_log_level(LogLevel::warn);
  const int max_c = *std::max_element(levels.begin(), levels.end());
  std::string host = "127.0.0.1", name;
  int port = 0;
  std::unique_ptr<Server> server;
  std::thread listener;
  if (!url.empty()) {
    const size_t colon = url.rfind(':');
    if (colon == std::string::npos || std::atoi(url.c_str() + colon + 1) <= 0) {
      std::fprintf(stderr, "bench: --url wants HOST:PORT, got '%s'\n", url.c_str());
      return 2;
    }
    host = url.substr(0, colon);
    port = std::atoi(url.c_str() + colon + 1);
    httplib::Client c(host, port);
    auto r = c.Get("/v1/models");
    if (!r || r->status != 200) {
      std::fprintf(stderr, "bench: GET http://%s/v1/models failed; is the server up?\n", url.c_str());
      return 1;
    }
    name = Json::parse(r->body)["data"][0].value("id", "");
    std::printf("server %s, model %s; %d tokens per request\n", url.c_str(), name.c_str(), tokens);
  } else {
    if (model.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      model = std::string(tmp ? tmp : "/tmp") + "/tailor-bench-0.5b-tok";
      if (!file_exists(model + "/tokenizer.json")) {
        GenModelOptions o;
        o.arch = Arch::qwen2, o.preset = "0.5b", o.dtype = DType::bf16, o.out_dir = model, o.quiet = true;
        if (Status st = generate_model(o); !st.ok()) {
          std::fprintf(stderr, "bench: %s\n", st.message().c_str());
          return 1;
        }
      }
    }
    LoadOptions lo;
    lo.runner.n_ctx = 64 + tokens;
    lo.runner.n_slots = max_c;
    lo.device = device;
    lo.progress = false;
    lo.verbose = false;
    lo.need_tokenizer = true;
    auto m = load_model(model, lo);
    if (!m.ok()) {
      std::fprintf(stderr, "bench: %s\n", m.status().message().c_str());
      return 1;
    }
    const std::string desc = m->runner->describe();
    ServerOptions so;
    so.port = 0;
    so.max_queue = max_c;
    auto srv = Server::create(std::move(m).value(), model, so);
    if (!srv.ok()) {
      std::fprintf(stderr, "bench: %s\n", srv.status().message().c_str());
      return 1;
    }
    server = std::move(srv).value();
    auto bound = server->bind();
    if (!bound.ok()) return 1;
    port = *bound;
    listener = std::thread([&] { server->listen(); });
    name = server->model_name();
    std::printf("model %s, %s; %d tokens per request\n", model.c_str(), desc.c_str(), tokens);
  }
  complete(host, port, name, 4, 0);  // warm-up: page in the weights, size the buffers

  std::printf(
      "| concurrency | requests | tokens | wall s | aggregate tok/s | per-request tok/s | median TTFT ms "
      "|\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  int rc = 0;
  for (int c : levels) {
    std::vector<Reply> replies(static_cast<size_t>(c));
    std::vector<std::thread> ts;
    const auto t0 = Clock::now();
    for (int i = 0; i < c; ++i)
      ts.emplace_back([&, i] { replies[size_t(i)] = complete(host, port, name, tokens, 1000 + i); });
    for (auto& t : ts) t.join();
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    int total = 0;
    std::vector<double> ttft, per_req;
    for (const auto& r : replies) {
      if (!r.ok) {
        std::fprintf(stderr, "bench: request failed: %s\n", r.error.c_str());
        rc = 1;
        continue;
      }
      total += r.tokens;
      ttft.push_back(r.queue_ms + r.prompt_ms);
      per_req.push_back(r.decode_ms > 0 ? (r.tokens - 1) * 1e3 / r.decode_ms : 0);
    }
    std::printf("| %d | %d | %d | %.2f | %.1f | %.2f | %.0f |\n", c, c, total, wall, total / wall,
                median(per_req), median(ttft));
    std::fflush(stdout);
  }
  if (server) {
    server->stop();
    listener.join();
  }
  return rc;
}
