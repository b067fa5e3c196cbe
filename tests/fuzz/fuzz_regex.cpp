// libFuzzer: the regex parser and converter (raw and JSON-string modes), then the automaton and matcher.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "grammar/regex.h"
#include "grammar_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tailor::grammar;
  if (size < 1 || size > 1024) return 0;
  RegexOptions opt;
  opt.json_string = data[0] & 1;
  opt.ascii_safe = data[0] & 2;
  std::string_view pattern(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)regex_length_bounds(pattern);
  fuzz::check_and_exercise(regex_to_grammar(pattern, opt), data, size);
  return 0;
}
