// tailor tokenize PATH --text T | --file F [--special] [--no-add-special] [--decode]
// Prints token ids separated by spaces (or, with --decode, the text of the given ids) on stdout.
#include <cstdio>
#include <string>

#include "command.h"
#include "core/mmap.h"
#include "tokenizer/tokenizer.h"

namespace tailor::cli {
namespace {

Result<std::unique_ptr<Tokenizer>> open_tokenizer(const std::string& path) {
  if (is_directory(path)) return Tokenizer::from_model_dir(path);
  return Tokenizer::from_file(path);
}

// "1 2 3" or "1,2,3" or "[1, 2, 3]" -> ids.
Result<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == ',' || c == '\n' || c == '\t' || c == '\r' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    if (c < '0' || c > '9')
      return invalid_argument(cat("--decode: unexpected character '", c, "' at offset ", i,
                                  " (expected ids separated by spaces or commas)"));
    long long v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i] - '0');
      if (v > INT32_MAX) return invalid_argument("--decode: id too large");
      ++i;
    }
    ids.push_back(int32_t(v));
  }
  return ids;
}

int run_tokenize(const std::vector<std::string>& argv) {
  auto args = Args::parse(argv, {"text", "file"}, {"special", "no-add-special", "decode", "skip-special"});
  if (!args.ok()) return usage_error("tokenize", args.status().message());
  if (args->positional().size() != 1) {
    return usage_error("tokenize", "expected one PATH (a model folder or a tokenizer.json)");
  }
  if (args->has("text") == args->has("file"))
    return usage_error("tokenize", "give exactly one of --text or --file");
  std::string input;
  if (args->has("text")) {
    input = *args->get("text");
  } else {
    auto r = read_file(*args->get("file"));
    if (!r.ok()) return fail(r.status());
    input = std::move(r).value();
  }
  auto tok = open_tokenizer(args->positional()[0]);
  if (!tok.ok()) return fail(tok.status());

  if (args->has("decode")) {
    auto ids = parse_ids(input);
    if (!ids.ok()) return fail(ids.status());
    for (int32_t id : *ids) {
      if (id >= (*tok)->vocab_size()) {
        return fail(invalid_argument(
            cat("--decode: id ", id, " is outside the vocabulary (size ", (*tok)->vocab_size(), ")")));
      }
    }
    std::string text = (*tok)->decode(*ids, args->has("skip-special"));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  EncodeOptions opt;
  opt.parse_special = args->has("special");
  opt.add_special_tokens = !args->has("no-add-special");
  auto ids = (*tok)->encode(input, opt);
  if (!ids.ok()) return fail(ids.status());
  std::string out;
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i) out += ' ';
    out += std::to_string((*ids)[i]);
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

TAILOR_COMMAND(tokenize, "tokenize", "print the token ids of a text (or decode ids with --decode)",
               "usage: tailor tokenize PATH (--text TEXT | --file FILE) [--special] [--no-add-special]\n"
               "       tailor tokenize PATH --decode (--text IDS | --file FILE) [--skip-special]\n\n"
               "PATH is a model folder (tokenizer.json + tokenizer_config.json) or a tokenizer.json file.\n"
               "Prints the ids separated by spaces on one line.\n\n"
               "  --special          recognise special tokens written in the text (\"<|im_start|>\")\n"
               "  --no-add-special   do not add the tokens of the post-processor (BOS for Llama-2)\n"
               "  --decode           the input is ids (\"1 2 3\"); print their text instead\n"
               "  --skip-special     with --decode: leave special tokens out of the text",
               run_tokenize);

}  // namespace tailor::cli
