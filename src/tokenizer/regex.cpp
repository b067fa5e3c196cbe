#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {
std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof(buf));
  if (n < 0) return cat("PCRE2 error ", code);
  return std::string(reinterpret_cast<const char*>(buf), size_t(n));
}

// Per-thread match state: match data and a JIT stack large enough for long whitespace runs (the default 32
// KiB machine stack overflows on backtracking through \s+ over megabytes of spaces).
struct ThreadState {
  pcre2_match_data* md = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* ctx = nullptr;
  ThreadState() {
    md = pcre2_match_data_create(32, nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    if (ctx && stack) pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadState() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};
ThreadState& thread_state() {
  thread_local ThreadState s;
  return s;
}
// Unicode White_Space, listed so that it does not depend on PCRE2's notion of \s.
constexpr const char* kSpace =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
// UTS #18 word characters (Rust regex's \w; Oniguruma's is the same for the characters tokenizers meet).
constexpr const char* kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D})";
}  // namespace

std::string Regex::translate(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's' || e == 'w') {
        const char* set = e == 's' ? kSpace : kWord;
        if (in_class) {
          out += set;
        } else {
          out += '[';
          out += set;
          out += ']';
        }
      } else if ((e == 'S' || e == 'W') && !in_class) {
        out += "[^";
        out += e == 'S' ? kSpace : kWord;
        out += ']';
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Result<std::unique_ptr<Regex>> Regex::compile(std::string_view source, const std::string& where) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  const std::string pattern = translate(source);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code) {
    return invalid_argument(cat(where, ": cannot compile regex /", source, "/: ", pcre2_message(err)));
  }
  std::unique_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(source);
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Status Regex::for_each_match(std::string_view text,
                             const std::function<void(size_t, size_t)>& on_match) const {
  ThreadState& ts = thread_state();
  if (!ts.md) return out_of_memory("PCRE2: cannot allocate match data");
  auto* code = static_cast<pcre2_code*>(code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, 0, ts.md, ts.ctx)
                  : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, ts.md, ts.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return invalid_argument(cat("regex /", pattern_, "/ failed at byte ", pos, " of a ", text.size(),
                                  "-byte piece: ", pcre2_message(rc)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
    const size_t s = ov[0], e = ov[1];
    on_match(s, e);
    if (e > s) {
      pos = e;
    } else {
      if (e >= text.size()) break;
      pos = e + size_t(utf8_len(static_cast<unsigned char>(text[e])));
    }
  }
  return {};
}

}  // namespace tailor::tok
