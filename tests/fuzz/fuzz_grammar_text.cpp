// libFuzzer: the GBNF-like grammar parser, its printer (parse -> print -> parse must succeed and print the
// same), the automaton builder and the matcher over a small vocabulary.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "grammar/grammar_text.h"
#include "grammar_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tailor::grammar;
  if (size > 4096) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto g = parse_grammar_text(text);
  if (!g.ok()) {
    if (g.status().message().empty()) std::abort();  // errors must say what is wrong
    return 0;
  }
  std::string printed = g->to_text();
  auto again = parse_grammar_text(printed);
  if (!again.ok() || again->to_text() != printed) std::abort();
  auto cg = compile_grammar(*g, fuzz::fuzz_vocab(), fuzz::fuzz_compile_options());
  if (!cg.ok()) return 0;
  fuzz::exercise(*cg, data, size);
  return 0;
}
