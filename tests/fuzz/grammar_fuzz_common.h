// Shared by the grammar fuzz targets: a tiny byte-level vocabulary, small automaton limits (so that a fuzzed
// `a{99999}` fails fast with an error instead of taking seconds), and a short random walk through the matcher
// that cross-checks the token mask against accept_token.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/matcher.h"

namespace tailor::grammar::fuzz {

inline std::shared_ptr<const Vocabulary> fuzz_vocab() {
  static std::shared_ptr<const Vocabulary> v = [] {
    std::vector<std::string> t;
    for (int b = 0; b < 256; ++b) t.push_back(std::string(1, char(b)));
    // a few multi-byte tokens so that tokens cross rule boundaries
    for (const char* s : {"\"", "\",", "\"}", "{\"", "\":", "true", "null", "12", "ab", "\\u00", "\xc3\xa9",
                          "é\"", "[{", "}]"}) {
      t.push_back(s);
    }
    t.push_back("<eos>");
    return Vocabulary::create(t, {int32_t(t.size() - 1)}).value();
  }();
  return v;
}

inline CompileOptions fuzz_compile_options() {
  CompileOptions o;
  o.eager_ms = 0;  // classify lazily: only the states the walk meets
  o.limits.max_nfa_states = 20000;
  o.limits.max_dfa_states = 5000;
  o.limits.max_determinize_work = 5'000'000;
  return o;
}

// Drives the matcher with choices taken from `seed` bytes; every allowed token must be accepted and every
// accepted token allowed (checked on the chosen token and its neighbours), and the mask never allows a token
// that leads nowhere.
inline void exercise(const std::shared_ptr<const CompiledGrammar>& g, const uint8_t* seed, size_t n) {
  GrammarMatcher m(g);
  const Vocabulary& v = g->vocab();
  std::vector<uint32_t> mask(v.mask_words());
  for (size_t step = 0; step < 24 && !m.is_terminated(); ++step) {
    m.fill_next_token_mask(mask);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < v.size(); ++id) {
      if ((mask[size_t(id) >> 5] >> (id & 31)) & 1) allowed.push_back(id);
    }
    if (allowed.empty()) std::abort();  // a live grammar state always has a continuation
    for (int32_t id : {allowed.front(), allowed.back()}) {
      GrammarMatcher probe = m;
      if (!probe.accept_token(id)) std::abort();
    }
    int32_t pick = allowed[(n ? seed[step % n] : step) % allowed.size()];
    if (!m.accept_token(pick)) std::abort();
    if (step % 5 == 4) m.rollback(1);
  }
  (void)m.jump_forward(64);
  (void)m.shortest_completion(4096);
}

// The common tail of the converter targets: a refused input must say why; an accepted one is compiled (the
// small limits may refuse it) and walked.
inline void check_and_exercise(const Result<Grammar>& g, const uint8_t* seed, size_t n) {
  if (!g.ok()) {
    if (g.status().message().empty()) std::abort();  // errors must say what is wrong
    return;
  }
  auto cg = compile_grammar(g.value(), fuzz_vocab(), fuzz_compile_options());
  if (cg.ok()) exercise(*cg, seed, n);
}

}  // namespace tailor::grammar::fuzz
