// Prometheus text exposition format 0.0.4, written by hand (prometheus-cpp is not packaged in Debian 12).
#include <cstdio>
#include <sstream>

#include "server/server_impl.h"

namespace tailor {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::ostringstream& os, const char* name, const char* type, const char* help) {
  os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void scalar(std::ostringstream& os, const char* name, const char* type, const char* help, double v) {
  header(os, name, type, help);
  os << name << ' ' << num(v) << '\n';
}

void histogram(std::ostringstream& os, const char* name, const char* help, const Histogram& h) {
  header(os, name, "histogram", help);
  const Histogram::Snapshot s = h.snapshot();
  for (size_t i = 0; i < s.upper_bounds.size(); ++i)
    os << name << "_bucket{le=\"" << num(s.upper_bounds[i]) << "\"} " << s.cumulative[i] << '\n';
  os << name << "_bucket{le=\"+Inf\"} " << s.count << '\n';
  os << name << "_sum " << num(s.sum) << '\n' << name << "_count " << s.count << '\n';
}

// Label values are ours (route names, codes) but escape anyway, as the format requires.
std::string label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

std::string render_metrics(const Engine& engine, const HttpCounters& http, const GrammarFactory* grammars) {
  std::ostringstream os;
  const EngineMetrics& m = engine.metrics();
  const EngineSnapshot s = engine.snapshot();

  header(os, "tailor_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : http.snapshot())
    os << "tailor_http_requests_total{route=\"" << label(key.first) << "\",code=\"" << key.second << "\"} "
       << n << '\n';
  scalar(os, "tailor_requests_submitted_total", "counter", "Generation requests accepted into the queue.",
         double(m.requests_submitted.load()));
  scalar(os, "tailor_requests_rejected_total", "counter",
         "Generation requests refused with 503 (queue full).", double(m.requests_rejected.load()));
  header(os, "tailor_requests_finished_total", "counter", "Generation requests finished, by reason.");
  for (int i = 0; i < kFinishKinds; ++i)
    os << "tailor_requests_finished_total{reason=\"" << finish_kind_name(i) << "\"} "
       << m.requests_finished[size_t(i)].load() << '\n';
  scalar(os, "tailor_prompt_tokens_total", "counter", "Prompt tokens prefilled.",
         double(m.prompt_tokens.load()));
  scalar(os, "tailor_generated_tokens_total", "counter", "Tokens generated.",
         double(m.generated_tokens.load()));
  scalar(os, "tailor_engine_steps_total", "counter", "Forward passes run by the engine.",
         double(m.steps.load()));
  scalar(os, "tailor_engine_step_tokens_total", "counter", "Tokens run through forward passes.",
         double(m.step_tokens.load()));
  histogram(os, "tailor_time_to_first_token_seconds", "Submission to first generated token.",
            m.time_to_first_token);
  histogram(os, "tailor_time_per_output_token_seconds", "Time between consecutive generated tokens.",
            m.time_per_output_token);
  histogram(os, "tailor_queue_time_seconds", "Time spent waiting for a slot.", m.queue_time);
  histogram(os, "tailor_request_duration_seconds", "Submission to last token.", m.request_duration);
  histogram(os, "tailor_batch_size", "Sequences per forward pass.", m.batch_size);
  scalar(os, "tailor_queue_depth", "gauge", "Requests waiting for a slot.", double(s.queue_depth));
  scalar(os, "tailor_slots_active", "gauge", "KV-cache slots held by running requests.", double(s.active));
  scalar(os, "tailor_slots_total", "gauge", "KV-cache slots (the largest batch).", double(s.n_slots));
  scalar(os, "tailor_kv_cache_tokens", "gauge", "KV-cache positions in use.", double(s.kv_tokens));
  scalar(os, "tailor_kv_cache_capacity_tokens", "gauge", "KV-cache positions in all slots.",
         double(s.kv_capacity));
  scalar(os, "tailor_kv_cache_usage_ratio", "gauge", "KV-cache positions in use / capacity.",
         s.kv_capacity > 0 ? double(s.kv_tokens) / double(s.kv_capacity) : 0.0);
  if (grammars) {
    const GrammarFactory::Stats g = grammars->stats();
    scalar(os, "tailor_grammar_cache_hits_total", "counter",
           "Structured-output requests served by a cached grammar.", double(g.hits));
    scalar(os, "tailor_grammar_cache_misses_total", "counter",
           "Structured-output requests that compiled a grammar.", double(g.misses));
  }
  return os.str();
}

}  // namespace tailor
