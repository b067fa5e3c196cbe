// tailor serve: the OpenAI-compatible HTTP server.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "command.h"
#include "core/log.h"
#include "sampling_flags.h"
#include "server/demo.h"
#include "server/server.h"

namespace tailor::cli {

static int run_serve(const std::vector<std::string>& argv) {
  std::vector<std::string> vf = {"host",      "port",      "api-key",     "parallel",
                                 "alias",     "max-queue", "max-tokens",  "max-body",
                                 "port-file", "demo-dir",  "read-timeout"};
  vf.insert(vf.end(), kLoadFlags.begin(), kLoadFlags.end());
  auto a = Args::parse(argv, vf, {"demo"});
  if (!a.ok()) return usage_error("serve", a.status().message());
  const bool demo = a->has("demo");
  if (demo ? !a->positional().empty() : a->positional().size() != 1)
    return usage_error("serve", "give exactly one MODEL folder, or --demo");

  ServerOptions so;
  so.host = a->get_or("host", "127.0.0.1");
  so.api_key = a->get_or("api-key", "");
  so.model_name = a->get_or("alias", demo ? "tailor-demo" : "");
  auto port = a->get_int("port", 8080);
  if (!port.ok() || *port < 0 || *port > 65535)
    return usage_error("serve", "--port must be 0..65535 (0 = any free port)");
  so.port = int(*port);
  auto parallel = a->get_int("parallel", 4);
  if (!parallel.ok() || *parallel < 1 || *parallel > 256)
    return usage_error("serve", "--parallel must be 1..256");
  auto queue = a->get_int("max-queue", -1);
  if (!queue.ok() || *queue < -1 || *queue > 100000)
    return usage_error("serve", "--max-queue must be 0..100000");
  so.max_queue = int(*queue);
  auto mt = a->get_int("max-tokens", so.default_max_tokens);
  if (!mt.ok() || *mt < 1 || *mt > (1 << 24))
    return usage_error("serve", "--max-tokens must be a positive integer");
  so.default_max_tokens = int(*mt);
  auto mb = a->get_int("max-body", int64_t(so.max_body_bytes));
  if (!mb.ok() || *mb < 1024 || *mb > (int64_t(1) << 32))
    return usage_error("serve", "--max-body must be 1024..4294967296 bytes");
  so.max_body_bytes = size_t(*mb);
  auto rt = a->get_int("read-timeout", so.read_timeout_s);
  if (!rt.ok() || *rt < 1 || *rt > 3600)
    return usage_error("serve", "--read-timeout must be 1..3600 seconds");
  so.read_timeout_s = int(*rt);
  auto lo = load_options_from_args(*a);
  if (!lo.ok()) return usage_error("serve", lo.status().message());
  lo->need_tokenizer = true;
  lo->runner.n_slots = int(*parallel);

  std::string dir;
  if (demo) {
    auto d = ensure_demo_model(a->get_or("demo-dir", default_demo_dir()));
    if (!d.ok()) return fail(d.status());
    dir = *d;
  } else {
    dir = a->positional()[0];
  }
  {
    // The context per slot is capped by the model's (dtypes and placement are the Plan's, in load_model).
    auto spec = load_model_spec(dir);
    if (!spec.ok()) return fail(spec.status());
    lo->runner.n_ctx = std::min(lo->runner.n_ctx, spec->hp.max_position_embeddings);
  }
  // SIGINT/SIGTERM are taken by a watcher thread (blocked here, before any thread starts, so all inherit it).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto m = load_model(dir, *lo);
  if (!m.ok()) return fail(m.status());
  const std::string desc = m->runner->describe();
  auto server = Server::create(std::move(m).value(), dir, so);
  if (!server.ok()) return fail(server.status());
  auto bound = (*server)->bind();
  if (!bound.ok()) return fail(bound.status());
  if (auto pf = a->get("port-file")) {
    std::ofstream f(*pf);
    f << *bound << "\n";
    if (!f) return fail(io_error(cat(*pf, ": cannot write the port file")));
  }
  std::fprintf(stderr, "tailor: %s\ntailor: serving '%s' (%d slots x %d tokens) on http://%s:%d%s\n",
               desc.c_str(), (*server)->model_name().c_str(), int(*parallel), (*server)->engine().n_ctx(),
               so.host.c_str(), *bound, so.api_key.empty() ? "" : " (API key required)");
  std::fflush(stderr);

  Server* srv = server->get();
  std::thread watcher([srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGINT || sig == SIGTERM) srv->stop();
  });
  const bool ok = srv->listen();
  srv->stop();
  // Wake the watcher if the listener ended on its own.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  std::fprintf(stderr, "tailor: server stopped\n");
  return ok ? 0 : 1;
}

TAILOR_COMMAND(
    serve, "serve", "serve a model over an OpenAI-compatible HTTP API",
    std::string(
        "usage: tailor serve MODEL [--host 127.0.0.1] [--port 8080] [--api-key K] [--parallel N] [--ctx N]\n"
        "       tailor serve --demo  (a small random-weight Qwen3 with the real tokenizer, generated "
        "once)\n\n"
        "Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET "
        "/metrics.\n"
        "  --host H             address to listen on [127.0.0.1]; 0.0.0.0 exposes the server to the network\n"
        "  --port P             TCP port; 0 picks a free one [8080]\n"
        "  --port-file F        write the port to F once listening (scripts, with --port 0)\n"
        "  --api-key K          require \"Authorization: Bearer K\" (all routes but /health)\n"
        "  --parallel N         sequences decoded together (KV-cache slots) [4]\n"
        "  --max-queue N        requests waiting for a slot before 503 + Retry-After [4 x parallel, >= 16]\n"
        "  --max-tokens N       generation limit for requests that set no max_tokens [1024]\n"
        "  --max-body BYTES     largest request body; larger ones get 413 [8388608]\n"
        "  --read-timeout S     drop a client that sends nothing for S seconds (slow clients) [10]\n"
        "  --alias NAME         the model id clients send [the folder name; tailor-demo with --demo]\n"
        "  --demo-dir DIR       where --demo keeps its model [$XDG_CACHE_HOME/tailor/demo]\n"
        "model:\n"
        "  --ctx N              context length per slot (KV-cache tokens) [4096 or the model's maximum]\n"
        "  --threads N          CPU threads [all cores]\n"
        "  --dtype D            weight storage dtype: bf16, f16, f32 [the Plan's choice: see `tailor plan`]\n"
        "  --kv-dtype D         CPU KV-cache dtype: f32, f16, bf16 [f32]\n"
        "  --device D           auto, cpu or cuda [auto: the Plan decides]\n"
        "  --gpu-layers N       decoder layers on the GPU, the rest on the CPU [as many as fit]\n"
        "Sampling settings come with each request (temperature, top_p, top_k, min_p, seed, ...).\n"),
    run_serve);

}  // namespace tailor::cli
