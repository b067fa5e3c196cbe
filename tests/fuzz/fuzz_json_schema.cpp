// libFuzzer: JSON Schema -> grammar (malformed JSON, unknown and unsupported keywords, odd $refs, recursion),
// then the automaton and matcher over a small vocabulary.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "grammar/json_schema.h"
#include "grammar_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tailor::grammar;
  if (size < 1 || size > 8192) return 0;
  JsonSchemaOptions opt;
  opt.flexible_whitespace = data[0] & 1;
  opt.strict_additional_properties = !(data[0] & 2);
  opt.max_whitespace = data[0] >> 4;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  fuzz::check_and_exercise(json_schema_to_grammar(text, opt), data, size);
  return 0;
}
