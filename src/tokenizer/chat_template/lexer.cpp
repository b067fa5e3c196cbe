#include "tokenizer/chat_template/lexer.h"

#include <cmath>
#include <cstdlib>

#include "tokenizer/chat_template/unicode.h"
#include "tokenizer/chat_template/value.h"

namespace tailor::chat_template {

namespace {

[[noreturn]] void lex_fail(std::string msg, size_t pos) {
  throw TemplateError{std::move(msg), pos};
}

// Python's \s: Unicode whitespace. Returns the byte length of the whitespace character at i, or 0.
size_t space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  uint32_t cp;
  bool valid;
  size_t n = utf8_next(s, i, &cp, &valid);
  return valid && py_isspace(cp) ? n : 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (size_t n = space_at(s, i)) i += n;
  return i;
}

// str.rstrip() with no arguments.
std::string_view rstrip_spaces(std::string_view s) {
  size_t keep = 0;
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_next(s, i, &cp, &valid);
    i += n;
    if (!valid || !py_isspace(cp)) keep = i;
  }
  return s.substr(0, keep);
}

bool all_spaces(std::string_view s) {
  if (s.empty()) return false;
  return skip_spaces(s, 0) == s.size();
}

bool starts(std::string_view s, size_t i, std::string_view p) {
  return s.substr(i, p.size()) == p;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// (\d+_)*\d+ : digits with single underscores between them. Returns the end, or i when nothing matched.
size_t match_digits(std::string_view s, size_t i) {
  size_t j = i;
  if (j >= s.size() || !is_digit(s[j])) return i;
  while (true) {
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j + 1 < s.size() && s[j] == '_' && is_digit(s[j + 1])) {
      ++j;
      continue;
    }
    return j;
  }
}

// jinja2's float_re; returns the end or i.
size_t match_float(std::string_view s, size_t i) {
  if (i > 0 && s[i - 1] == '.') return i;
  size_t j = match_digits(s, i);
  if (j == i) return i;
  auto exponent = [&](size_t k) -> size_t {
    if (k < s.size() && (s[k] == 'e' || s[k] == 'E')) {
      size_t m = k + 1;
      if (m < s.size() && (s[m] == '+' || s[m] == '-')) ++m;
      size_t e = match_digits(s, m);
      if (e != m) return e;
    }
    return k;
  };
  if (j < s.size() && s[j] == '.') {
    size_t f = match_digits(s, j + 1);
    if (f != j + 1) {
      size_t e = exponent(f);
      return e;  // fraction, with an optional exponent
    }
  }
  size_t e = exponent(j);
  return e != j ? e : i;
}

// jinja2's integer_re (binary, octal, hex, decimal); returns the end or i.
size_t match_integer(std::string_view s, size_t i, int* base) {
  auto prefixed = [&](char p, auto ok) -> size_t {
    if (i + 1 < s.size() && s[i] == '0' && (s[i + 1] == p || s[i + 1] == p - 32)) {
      size_t j = i + 2, last = i;
      while (true) {
        size_t k = j;
        if (k < s.size() && s[k] == '_') ++k;
        if (k < s.size() && ok(s[k])) {
          j = k + 1;
          last = j;
        } else {
          break;
        }
      }
      return last;
    }
    return i;
  };
  size_t e;
  if ((e = prefixed('b', [](char c) { return c == '0' || c == '1'; })) != i) {
    *base = 2;
    return e;
  }
  if ((e = prefixed('o', [](char c) { return c >= '0' && c <= '7'; })) != i) {
    *base = 8;
    return e;
  }
  if ((e = prefixed('x', [](char c) {
         return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
       })) != i) {
    *base = 16;
    return e;
  }
  *base = 10;
  if (i < s.size() && s[i] >= '1' && s[i] <= '9') {
    size_t j = i + 1;
    while (true) {
      size_t k = j;
      if (k < s.size() && s[k] == '_') ++k;
      if (k < s.size() && is_digit(s[k]))
        j = k + 1;
      else
        return j;
    }
  }
  if (i < s.size() && s[i] == '0') {
    size_t j = i + 1;
    while (true) {
      size_t k = j;
      if (k < s.size() && s[k] == '_') ++k;
      if (k < s.size() && s[k] == '0')
        j = k + 1;
      else
        return j;
    }
  }
  return i;
}

int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body, as jinja2 applies it.
std::string unescape(std::string_view body, size_t pos) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size();) {
    char c = body[i];
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) lex_fail("string literal ends with a lone backslash", pos);
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\n':
        break;  // line continuation
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        uint32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = i + k < body.size() ? hex_val(body[i + k]) : -1;
          if (h < 0) lex_fail(std::string("truncated \\") + e + " escape in string literal", pos);
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF) lex_fail("illegal Unicode character in string literal", pos);
        i += static_cast<size_t>(digits);
        append_utf8(out, cp);
        break;
      }
      case 'N':
        lex_fail("\\N{...} escapes are not supported in string literals", pos);
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i)
            cp = cp * 8 + static_cast<uint32_t>(body[i] - '0');
          append_utf8(out, cp);
        } else if (static_cast<unsigned char>(e) >= 0x80) {
          // jinja2 first escapes non-ASCII characters ("\xe9"), so a backslash before one yields a
          // backslash followed by that escape's text.
          uint32_t cp;
          bool valid;
          size_t n = utf8_next(body, i - 1, &cp, &valid);
          char buf[16];
          if (!valid) cp = 0xDC00 + cp;
          if (cp < 0x100)
            std::snprintf(buf, sizeof buf, "\\x%02x", cp);
          else if (cp < 0x10000)
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          else
            std::snprintf(buf, sizeof buf, "\\U%08x", cp);
          out += buf;
          i += n - 1;
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

struct Lexer {
  const std::string& s;
  std::vector<Token> out;
  bool line_starting = true;

  void emit(Tok t, size_t pos, std::string text = {}) { out.push_back(Token{t, pos, std::move(text)}); }

  // Text before a tag, with jinja2's `-` stripping and lstrip_blocks applied.
  void emit_data(size_t start, size_t end, char sign, bool is_variable) {
    std::string_view text(s.data() + start, end - start);
    if (sign == '-') {
      text = rstrip_spaces(text);
    } else if (sign != '+' && !is_variable) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && all_spaces(text.substr(l_pos))) text = text.substr(0, l_pos);
    }
    if (!text.empty()) emit(Tok::data, start, std::string(text));
  }

  void run() {
    size_t pos = 0;
    const size_t n = s.size();
    while (pos < n) {
      size_t i = pos;
      while (true) {
        i = s.find('{', i);
        if (i == std::string::npos || i + 1 >= n) {
          i = std::string::npos;
          break;
        }
        char c = s[i + 1];
        if (c == '{' || c == '%' || c == '#') break;
        ++i;
      }
      if (i == std::string::npos) {
        emit(Tok::data, pos, s.substr(pos));
        return;
      }
      char kind = s[i + 1];
      char sign = (i + 2 < n && (s[i + 2] == '-' || s[i + 2] == '+')) ? s[i + 2] : 0;
      size_t after = i + 2 + (sign ? 1 : 0);
      if (kind == '%') {
        size_t raw_end = match_raw_begin(after);
        if (raw_end) {
          emit_data(pos, i, sign, false);
          line_starting = s[raw_end - 1] == '\n';
          pos = lex_raw(raw_end);
          continue;
        }
      }
      emit_data(pos, i, sign, kind == '{');
      line_starting = false;
      if (kind == '#')
        pos = lex_comment(after, i);
      else
        pos = lex_tag(after, i, kind == '%');
    }
  }

  // `\s*raw\s*(-%}\s*|%})` after `{%`; returns the end or 0.
  size_t match_raw_begin(size_t j) {
    j = skip_spaces(s, j);
    if (!starts(s, j, "raw")) return 0;
    j = skip_spaces(s, j + 3);
    if (starts(s, j, "-%}")) return skip_spaces(s, j + 3);
    if (starts(s, j, "%}")) return j + 2;
    return 0;
  }

  size_t lex_raw(size_t start) {
    for (size_t j = s.find("{%", start); j != std::string::npos; j = s.find("{%", j + 1)) {
      size_t k = j + 2;
      char sign = (k < s.size() && (s[k] == '-' || s[k] == '+')) ? s[k] : 0;
      if (sign) ++k;
      k = skip_spaces(s, k);
      if (!starts(s, k, "endraw")) continue;
      k = skip_spaces(s, k + 6);
      size_t end;
      if (starts(s, k, "+%}"))
        end = k + 3;
      else if (starts(s, k, "-%}"))
        end = skip_spaces(s, k + 3);
      else if (starts(s, k, "%}"))
        end = k + 2 + (starts(s, k + 2, "\n") ? 1 : 0);
      else
        continue;
      emit_data(start, j, sign, false);
      line_starting = s[end - 1] == '\n';
      return end;
    }
    if (start >= s.size()) return start;  // as for comments, jinja2 accepts a {% raw %} that ends the source
    lex_fail("missing {% endraw %} for this {% raw %}", start);
  }

  size_t lex_comment(size_t start, size_t tag_pos) {
    for (size_t j = start; j < s.size(); ++j) {
      size_t end = 0;
      if (starts(s, j, "+#}"))
        end = j + 3;
      else if (starts(s, j, "-#}"))
        end = skip_spaces(s, j + 3);
      else if (starts(s, j, "#}"))
        end = j + 2 + (starts(s, j + 2, "\n") ? 1 : 0);
      if (end) {
        line_starting = s[end - 1] == '\n';
        return end;
      }
    }
    // jinja2's lexer only notices a missing '#}' when a character follows the '{#'.
    if (start >= s.size()) return start;
    lex_fail("missing end of comment tag '#}'", tag_pos);
  }

  // Tokens of a {% %} or {{ }} tag; returns the position after its end.
  size_t lex_tag(size_t j, size_t tag_pos, bool block) {
    emit(block ? Tok::block_begin : Tok::var_begin, tag_pos);
    std::vector<char> balance;
    const size_t n = s.size();
    while (true) {
      if (j >= n)
        lex_fail(block ? "missing end of block tag '%}'" : "missing end of variable tag '}}'", tag_pos);
      if (balance.empty()) {
        size_t end = 0;
        if (block) {
          if (starts(s, j, "+%}"))
            end = j + 3;
          else if (starts(s, j, "-%}"))
            end = skip_spaces(s, j + 3);
          else if (starts(s, j, "%}"))
            end = j + 2 + (starts(s, j + 2, "\n") ? 1 : 0);
        } else {
          if (starts(s, j, "-}}"))
            end = skip_spaces(s, j + 3);
          else if (starts(s, j, "}}"))
            end = j + 2;
        }
        if (end) {
          emit(block ? Tok::block_end : Tok::var_end, j);
          line_starting = s[end - 1] == '\n';
          return end;
        }
      }
      if (size_t k = skip_spaces(s, j); k != j) {
        j = k;
        continue;
      }
      char c = s[j];
      if (size_t e = match_float(s, j); e != j) {
        std::string digits;
        for (size_t k = j; k < e; ++k)
          if (s[k] != '_') digits += s[k];
        Token t{Tok::floating, j};
        t.fval = std::strtod(digits.c_str(), nullptr);
        out.push_back(std::move(t));
        j = e;
        continue;
      }
      int base = 10;
      if (size_t e = match_integer(s, j, &base); e != j) {
        std::string digits;
        for (size_t k = j + (base == 10 ? 0 : 2); k < e; ++k)
          if (s[k] != '_') digits += s[k];
        errno = 0;
        char* endp = nullptr;
        unsigned long long v = std::strtoull(digits.c_str(), &endp, base);
        if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX))
          lex_fail("integer literal " + s.substr(j, e - j) + " does not fit in 64 bits", j);
        Token t{Tok::integer, j};
        t.ival = static_cast<int64_t>(v);
        out.push_back(std::move(t));
        j = e;
        continue;
      }
      if (is_name_start(c)) {
        size_t e = j;
        while (e < n && is_name_char(s[e])) ++e;
        emit(Tok::name, j, s.substr(j, e - j));
        j = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t e = j + 1;
        while (e < n && s[e] != c) e += (s[e] == '\\') ? 2 : 1;
        if (e >= n) lex_fail("unterminated string literal", j);
        emit(Tok::string, j, unescape(std::string_view(s).substr(j + 1, e - j - 1), j));
        j = e + 1;
        continue;
      }
      static const struct {
        const char* text;
        Tok tok;
      } ops[] = {{"//", Tok::floordiv}, {"**", Tok::pow},     {"==", Tok::eq},    {"!=", Tok::ne},
                 {">=", Tok::gteq},     {"<=", Tok::lteq},    {"+", Tok::add},    {"-", Tok::sub},
                 {"/", Tok::div},       {"*", Tok::mul},      {"%", Tok::mod},    {"~", Tok::tilde},
                 {"[", Tok::lbracket},  {"]", Tok::rbracket}, {"(", Tok::lparen}, {")", Tok::rparen},
                 {"{", Tok::lbrace},    {"}", Tok::rbrace},   {">", Tok::gt},     {"<", Tok::lt},
                 {"=", Tok::assign},    {".", Tok::dot},      {":", Tok::colon},  {"|", Tok::pipe},
                 {",", Tok::comma},     {";", Tok::semicolon}};
      bool matched = false;
      for (auto& op : ops) {
        if (!starts(s, j, op.text)) continue;
        char ch = op.text[0];
        if (op.text[1] == 0 && (ch == '(' || ch == '[' || ch == '{')) {
          balance.push_back(ch == '(' ? ')' : (ch == '[' ? ']' : '}'));
        } else if (op.text[1] == 0 && (ch == ')' || ch == ']' || ch == '}')) {
          if (balance.empty()) lex_fail(std::string("unexpected '") + ch + "'", j);
          char expected = balance.back();
          balance.pop_back();
          if (expected != ch)
            lex_fail(std::string("unexpected '") + ch + "', expected '" + expected + "'", j);
        }
        emit(op.tok, j);
        j += std::char_traits<char>::length(op.text);
        matched = true;
        break;
      }
      if (!matched) {
        uint32_t cp;
        size_t len = utf8_next(s, j, &cp);
        lex_fail("unexpected character '" + s.substr(j, len) + "' in tag", j);
      }
    }
  }
};

}  // namespace

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    char c = source[i];
    if (c == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += c;
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& src) {
  Lexer lx{src, {}};
  lx.run();
  lx.out.push_back(Token{Tok::eof, src.size()});
  return std::move(lx.out);
}

void line_col(const std::string& src, size_t pos, int* line, int* col) {
  *line = 1;
  *col = 1;
  if (pos > src.size()) pos = src.size();
  uint32_t cp;
  for (size_t i = 0; i < pos;) {
    if (src[i] == '\n') {
      ++*line;
      *col = 1;
      ++i;
      continue;
    }
    i += utf8_next(src, i, &cp);
    ++*col;
  }
}

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::data:
      return "template text";
    case Tok::var_begin:
      return "'{{'";
    case Tok::var_end:
      return "'}}'";
    case Tok::block_begin:
      return "'{%'";
    case Tok::block_end:
      return "'%}'";
    case Tok::name:
      return "'" + t.text + "'";
    case Tok::string:
      return "string literal";
    case Tok::integer:
      return "integer";
    case Tok::floating:
      return "float";
    case Tok::eof:
      return "end of template";
    default:
      break;
  }
  static const char* names[] = {"+", "-",  "*",  "/", "//", "%", "**", "~", "(", ")", "[", "]", "{",
                                "}", "==", "!=", "<", "<=", ">", ">=", "=", ".", ":", "|", ",", ";"};
  int idx = static_cast<int>(t.type) - static_cast<int>(Tok::add);
  if (idx >= 0 && idx < static_cast<int>(sizeof names / sizeof names[0]))
    return std::string("'") + names[idx] + "'";
  return "token";
}

}  // namespace tailor::chat_template
