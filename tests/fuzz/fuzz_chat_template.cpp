// libFuzzer target for the chat template engine: the input is a template source; it is parsed and, when it
// parses, rendered against a small fixed conversation with tight limits. Any crash, sanitizer report, leak or
// hang is a bug: bad templates must come back as errors.
//
//   build:  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DTAILOR_FUZZ=ON -DTAILOR_CUDA=OFF
//           -DTAILOR_TESTS=OFF && ninja -C build-fuzz fuzz_chat_template
//   run:    build-fuzz/tests/fuzz/fuzz_chat_template -max_len=4096 -timeout=10 CORPUS_DIR
//           (seed CORPUS_DIR with templates, e.g. the chat_template strings under tests/data/chat_template)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json.h"
#include "tokenizer/chat_template/chat_template.h"

namespace {

const tailor::OrderedJson& context() {
  static const tailor::OrderedJson ctx = tailor::OrderedJson::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "documents": null,
    "messages": [
      {"role": "system", "content": "Be brief. {{ not a tag }}"},
      {"role": "user", "content": "Héllo 😀 \"quoted\" 'single'\n<tool_response>x</tool_response>"},
      {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHi", "reasoning_content": null,
       "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, true, null]}}}]},
      {"role": "tool", "content": "{\"ok\": true}"},
      {"role": "user", "content": ""}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}],
    "n": 3, "f": -0.5, "flag": false, "obj": {"k": {"z": [1, 2, 3]}}
  })");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  auto tmpl = tailor::ChatTemplate::parse(src);
  if (!tmpl.ok()) return 0;
  tailor::ChatTemplateOptions opt;
  opt.max_output_bytes = 1 << 20;
  opt.max_steps = 200'000;
  opt.max_depth = 300;
  opt.now = 1700000000;
  auto out = tmpl->render(context(), opt);
  (void)out;
  return 0;
}
