#include "tokenizer/json_scan.h"

#include <cstring>

#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {

class Scanner {
 public:
  Scanner(std::string_view t, const std::string& name) : t_(t), name_(name) {}

  Status error(const std::string& what) const {
    return invalid_argument(cat(name_, ": invalid JSON at byte ", p_, ": ", what));
  }
  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t')) ++p_;
  }
  bool at_end() const { return p_ >= t_.size(); }
  char peek() const { return p_ < t_.size() ? t_[p_] : '\0'; }
  size_t pos() const { return p_; }
  Status expect(char c) {
    ws();
    if (peek() != c)
      return error(at_end() ? cat("expected '", c, "' but the text ends") : cat("expected '", c, "'"));
    ++p_;
    return {};
  }

  // Reads a JSON string into out (UTF-8 checked, escapes decoded).
  Status string(std::string& out) {
    ws();
    if (peek() != '"') return error("expected a string");
    ++p_;
    out.clear();
    const size_t start = p_;
    for (;;) {
      size_t run = p_;
      while (run < t_.size()) {
        const auto c = static_cast<unsigned char>(t_[run]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++run;
      }
      out.append(t_.data() + p_, run - p_);
      p_ = run;
      if (p_ >= t_.size()) {
        p_ = start;
        return error("unterminated string");
      }
      const char c = t_[p_];
      if (c == '"') {
        ++p_;
        break;
      }
      if (c != '\\') return error("control character in a string (escape it as \\u00XX)");
      if (p_ + 1 >= t_.size()) return error("unterminated escape");
      const char e = t_[p_ + 1];
      p_ += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
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
        case 'u': {
          uint32_t cp;
          TAILOR_RETURN_IF_ERROR(hex4(cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (p_ + 1 < t_.size() && t_[p_] == '\\' && t_[p_ + 1] == 'u') {
              p_ += 2;
              TAILOR_RETURN_IF_ERROR(hex4(lo));
            } else {
              return error("lone high surrogate in \\u escape");
            }
            if (lo < 0xDC00 || lo > 0xDFFF) return error("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return error("lone low surrogate in \\u escape");
          }
          utf8_append(out, char32_t(cp));
          break;
        }
        default:
          return error(cat("invalid escape '\\", e, "'"));
      }
    }
    if (size_t bad = utf8_first_invalid(out); bad != kNpos) {
      p_ = start;
      return error("string is not valid UTF-8");
    }
    return {};
  }

  Status integer(int64_t& v) {
    ws();
    const size_t start = p_;
    bool neg = false;
    if (peek() == '-') {
      neg = true;
      ++p_;
    }
    int64_t x = 0;
    size_t digits = 0;
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
      if (x > (int64_t(1) << 40)) return error("integer too large");
      x = x * 10 + (t_[p_] - '0');
      ++p_;
      ++digits;
    }
    if (digits == 0 || peek() == '.' || peek() == 'e' || peek() == 'E') {
      p_ = start;
      return error("expected an integer");
    }
    v = neg ? -x : x;
    return {};
  }

  // Skips one value of any type; returns its text span. Structure is checked later by nlohmann on the span.
  Status skip_value(std::string_view& span) {
    ws();
    const size_t start = p_;
    if (at_end()) return error("expected a value but the text ends");
    const char c = t_[p_];
    if (c == '"') {
      TAILOR_RETURN_IF_ERROR(skip_string());
    } else if (c == '{' || c == '[') {
      size_t depth = 0;
      for (;;) {
        if (p_ >= t_.size()) {
          p_ = start;
          return error("unterminated object or array");
        }
        const char d = t_[p_];
        if (d == '"') {
          TAILOR_RETURN_IF_ERROR(skip_string());
          continue;
        }
        ++p_;
        if (d == '{' || d == '[') {
          ++depth;
        } else if (d == '}' || d == ']') {
          if (--depth == 0) break;
        }
      }
    } else {
      while (p_ < t_.size() && !std::strchr(",}] \t\r\n", t_[p_])) ++p_;
      if (p_ == start) return error("expected a value");
    }
    span = t_.substr(start, p_ - start);
    return {};
  }

 private:
  Status hex4(uint32_t& cp) {
    if (p_ + 4 > t_.size()) return error("truncated \\u escape");
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[p_ + k];
      int d = (h >= '0' && h <= '9')   ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                       : -1;
      if (d < 0) return error("invalid hex digit in \\u escape");
      cp = cp * 16 + uint32_t(d);
    }
    p_ += 4;
    return {};
  }
  Status skip_string() {
    const size_t start = p_;
    ++p_;
    while (p_ < t_.size()) {
      const char c = t_[p_];
      if (c == '\\') {
        p_ += 2;
        continue;
      }
      ++p_;
      if (c == '"') return {};
    }
    p_ = start;
    return error("unterminated string");
  }

  std::string_view t_;
  const std::string& name_;
  size_t p_ = 0;
};

Result<Json> parse_span(std::string_view span, size_t at, const std::string& name, const std::string& key) {
  auto r = parse_json(span, cat(name, " (value of \"", key, "\" starting at byte ", at, ")"));
  if (!r.ok()) return r.status();
  return std::move(r).value();
}

Status scan_vocab(Scanner& sc, TokenizerJson& out) {
  TAILOR_RETURN_IF_ERROR(sc.expect('{'));
  sc.ws();
  if (sc.peek() == '}') {
    TAILOR_RETURN_IF_ERROR(sc.expect('}'));
    return {};
  }
  std::string key;
  for (;;) {
    TAILOR_RETURN_IF_ERROR(sc.string(key));
    TAILOR_RETURN_IF_ERROR(sc.expect(':'));
    int64_t id;
    TAILOR_RETURN_IF_ERROR(sc.integer(id));
    out.vocab.emplace_back(key, id);
    sc.ws();
    if (sc.peek() == ',') {
      TAILOR_RETURN_IF_ERROR(sc.expect(','));
      continue;
    }
    return sc.expect('}');
  }
}

Status scan_merges(Scanner& sc, TokenizerJson& out) {
  TAILOR_RETURN_IF_ERROR(sc.expect('['));
  sc.ws();
  if (sc.peek() == ']') return sc.expect(']');
  std::string a, b;
  for (;;) {
    sc.ws();
    if (sc.peek() == '"') {
      TAILOR_RETURN_IF_ERROR(sc.string(a));
      const size_t space = a.find(' ');
      if (space == std::string::npos) {
        return sc.error(cat("merge \"", a, "\" (model.merges[", out.merges.size(),
                            "]) is not of the form \"left right\""));
      }
      out.merges.emplace_back(a.substr(0, space), a.substr(space + 1));
    } else if (sc.peek() == '[') {
      TAILOR_RETURN_IF_ERROR(sc.expect('['));
      TAILOR_RETURN_IF_ERROR(sc.string(a));
      TAILOR_RETURN_IF_ERROR(sc.expect(','));
      TAILOR_RETURN_IF_ERROR(sc.string(b));
      TAILOR_RETURN_IF_ERROR(sc.expect(']'));
      out.merges.emplace_back(a, b);
    } else {
      return sc.error(
          cat("model.merges[", out.merges.size(), "]: expected \"left right\" or [\"left\", \"right\"]"));
    }
    sc.ws();
    if (sc.peek() == ',') {
      TAILOR_RETURN_IF_ERROR(sc.expect(','));
      continue;
    }
    return sc.expect(']');
  }
}

// Iterates the members of an object, calling on_member(key) positioned before each value.
template <class F>
Status for_each_member(Scanner& sc, F&& on_member) {
  TAILOR_RETURN_IF_ERROR(sc.expect('{'));
  sc.ws();
  if (sc.peek() == '}') return sc.expect('}');
  std::string key;
  for (;;) {
    TAILOR_RETURN_IF_ERROR(sc.string(key));
    TAILOR_RETURN_IF_ERROR(sc.expect(':'));
    TAILOR_RETURN_IF_ERROR(on_member(key));
    sc.ws();
    if (sc.peek() == ',') {
      TAILOR_RETURN_IF_ERROR(sc.expect(','));
      continue;
    }
    return sc.expect('}');
  }
}

}  // namespace

Result<TokenizerJson> scan_tokenizer_json(std::string_view text, const std::string& name) {
  TokenizerJson out;
  Scanner sc(text, name);
  sc.ws();
  if (sc.peek() != '{') return sc.error("expected the tokenizer.json object '{'");
  auto generic = [&](const std::string& key, Json& into) -> Status {
    std::string_view span;
    sc.ws();
    const size_t at = sc.pos();
    TAILOR_RETURN_IF_ERROR(sc.skip_value(span));
    TAILOR_ASSIGN_OR_RETURN(Json v, parse_span(span, at, name, key));
    into[key] = std::move(v);
    return {};
  };
  Status st = for_each_member(sc, [&](const std::string& key) -> Status {
    if (key != "model") return generic(key, out.root);
    sc.ws();
    if (sc.peek() != '{') return generic(key, out.root);  // not an object: the loader reports it
    out.has_model = true;
    Json& model = out.root["model"] = Json::object();
    return for_each_member(sc, [&](const std::string& mkey) -> Status {
      sc.ws();
      if (mkey == "vocab" && sc.peek() == '{') {
        out.vocab_is_map = true;
        out.vocab.clear();
        return scan_vocab(sc, out);
      }
      if (mkey == "merges" && sc.peek() == '[') {
        out.has_merges = true;
        out.merges.clear();
        return scan_merges(sc, out);
      }
      return generic(mkey, model);
    });
  });
  TAILOR_RETURN_IF_ERROR(st);
  sc.ws();
  if (!sc.at_end()) return sc.error("unexpected text after the top-level object");
  return out;
}

}  // namespace tailor::tok
