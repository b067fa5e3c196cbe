#include "tokenizer/decoder.h"

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {

// "<0xAB>" -> 0xAB, else -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t prev = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, prev)) {
    out.append(s, prev, at - prev);
    out += to;
    prev = at + from.size();
  }
  out.append(s, prev, std::string::npos);
  return out;
}

// Byte-level spelling -> bytes; a token with a code point outside the alphabet stays as it is (HF does the
// same).
void byte_level_token(const std::string& t, std::string& out) {
  const size_t mark = out.size();
  for (size_t i = 0; i < t.size();) {
    char32_t cp;
    int n = utf8_decode(t, i, &cp);
    int b = n > 0 ? unicode_to_byte(cp) : -1;
    if (b < 0) {
      out.resize(mark);
      out += t;
      return;
    }
    out += char(b);
    i += size_t(n);
  }
}

class ByteLevelDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (auto& t : tokens) byte_level_token(t, bytes);
    tokens.assign(1, utf8_lossy(bytes));
  }
  void token_bytes(std::string& t) const override {
    std::string out;
    byte_level_token(t, out);
    t = std::move(out);
  }
  bool is_byte_level() const override { return true; }
  bool local(bool& fused) const override {
    fused = true;
    return true;
  }
};

class MetaspaceDec : public Decoder {
 public:
  MetaspaceDec(std::string repl, bool strip_first) : repl_(std::move(repl)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(tokens[i], repl_, i == 0 && strip_first_ ? "" : " ");
  }
  void token_bytes(std::string& t) const override { t = replace_all(t, repl_, " "); }

  bool local(bool&) const override { return true; }

 private:
  std::string repl_;
  bool strip_first_;
};

// Runs of "<0xAB>" tokens become their bytes when they form valid UTF-8, else one U+FFFD per byte.
class ByteFallbackDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    size_t run_len = 0;
    auto flush = [&] {
      if (run_len == 0) return;
      if (utf8_first_invalid(run) == kNpos) {
        out.push_back(run);
      } else {
        for (size_t k = 0; k < run_len; ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_len = 0;
    };
    for (auto& t : tokens) {
      int b = parse_byte_token(t);
      if (b >= 0) {
        run += char(b);
        ++run_len;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
  void token_bytes(std::string& t) const override {
    int b = parse_byte_token(t);
    if (b >= 0) t.assign(1, char(b));
  }
  bool local(bool& fused) const override { return !fused; }
};

class FuseDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
  void token_bytes(std::string&) const override {}
  bool local(bool& fused) const override {
    fused = true;
    return true;
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDec : public Decoder {
 public:
  StripDec(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      for (size_t i = 0; i < t.size();) {
        char32_t cp;
        int n = utf8_decode(t, i, &cp);
        if (n == 0) {
          cp = 0xFFFD;
          n = 1;
        }
        chars.push_back({i, cp});
        i += size_t(n);
      }
      size_t a = 0, b = chars.size();
      while (a < start_ && a < b && chars[a].second == c_) ++a;
      for (size_t k = 0; k < stop_ && b > a && chars[b - 1].second == c_; ++k) --b;
      const size_t from = a < chars.size() ? chars[a].first : t.size();
      const size_t to = b < chars.size() ? chars[b].first : t.size();
      t = t.substr(from, to - from);
    }
  }
  void token_bytes(std::string&) const override {}

  // On fused text, a trailing strip depends on what follows, and a leading strip of more than one character
  // can reach past the first token of StreamDecoder's window.
  bool local(bool& fused) const override { return !(fused && (stop_ > 0 || start_ > 1)); }

 private:
  char32_t c_;
  size_t start_, stop_;
};

class ReplaceDec : public Decoder {
 public:
  ReplaceDec(std::string pattern, std::unique_ptr<Regex> re, std::string content)
      : pattern_(std::move(pattern)), re_(std::move(re)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) token_bytes(t);
  }
  void token_bytes(std::string& t) const override {
    if (!re_) {
      t = replace_all(t, pattern_, content_);
      return;
    }
    if (utf8_first_invalid(t) != kNpos) return;  // PCRE2 needs valid UTF-8; such a token cannot match anyway
    std::string out;
    size_t prev = 0;
    Status st = re_->for_each_match(t, [&](size_t a, size_t b) {
      out.append(t, prev, a - prev);
      out += content_;
      prev = b;
    });
    if (!st.ok()) return;
    out.append(t, prev, std::string::npos);
    t = std::move(out);
  }

  bool local(bool& fused) const override {
    if (!fused) return true;
    char32_t cp;
    return !re_ && !pattern_.empty() && utf8_decode(pattern_, 0, &cp) == int(pattern_.size());
  }

 private:
  std::string pattern_;
  std::unique_ptr<Regex> re_;
  std::string content_;
};

// Classic BPE end-of-word suffix ("</w>"): a space between words, nothing after the last token.
class BpeDec : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }
  void token_bytes(std::string& t) const override { t = replace_all(t, suffix_, " "); }

  bool local(bool& fused) const override { return !fused; }

 private:
  std::string suffix_;
};

class SequenceDec : public Decoder {
 public:
  explicit SequenceDec(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& p : parts_) p->decode_chain(tokens);
  }
  void token_bytes(std::string& t) const override {
    for (auto& p : parts_) p->token_bytes(t);
  }

  bool local(bool& fused) const override {
    for (auto& p : parts_)
      if (!p->local(fused)) return false;
    return true;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

Result<std::unique_ptr<Decoder>> make_decoder(const Json& j, const std::string& path) {
  TAILOR_RETURN_IF_ERROR(check_nesting(path));
  using Ptr = std::unique_ptr<Decoder>;
  if (j.is_null()) return Ptr();
  TAILOR_ASSIGN_OR_RETURN(std::string type, component_type(j, path));
  if (type == "ByteLevel") return Ptr(new ByteLevelDec());
  if (type == "ByteFallback") return Ptr(new ByteFallbackDec());
  if (type == "Fuse") return Ptr(new FuseDec());
  if (type == "Metaspace") {
    TAILOR_ASSIGN_OR_RETURN(std::string repl, get_string_or(j, "replacement", path, "\xE2\x96\x81"));
    TAILOR_ASSIGN_OR_RETURN(bool add_prefix, get_bool_or(j, "add_prefix_space", path, true));
    TAILOR_ASSIGN_OR_RETURN(std::string scheme, get_string_or(j, "prepend_scheme", path, ""));
    bool strip_first = scheme.empty() ? add_prefix : scheme != "never";
    return Ptr(new MetaspaceDec(std::move(repl), strip_first));
  }
  if (type == "Strip") {
    TAILOR_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", path));
    char32_t cp = 0;
    if (content.empty() || utf8_decode(content, 0, &cp) != int(content.size())) {
      return invalid_argument(cat(path, ".content: expected exactly one character"));
    }
    TAILOR_ASSIGN_OR_RETURN(long long start, get_int_or(j, "start", path, 0));
    TAILOR_ASSIGN_OR_RETURN(long long stop, get_int_or(j, "stop", path, 0));
    if (start < 0 || stop < 0) return invalid_argument(cat(path, ": start and stop must be >= 0"));
    return Ptr(new StripDec(cp, size_t(start), size_t(stop)));
  }
  if (type == "Replace") {
    bool is_regex = false;
    TAILOR_ASSIGN_OR_RETURN(std::string pattern, get_pattern(j, "pattern", path, &is_regex));
    TAILOR_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", path));
    std::unique_ptr<Regex> re;
    if (is_regex) {
      TAILOR_ASSIGN_OR_RETURN(re, Regex::compile(pattern, path + ".pattern"));
    }
    return Ptr(new ReplaceDec(std::move(pattern), std::move(re), std::move(content)));
  }
  if (type == "BPEDecoder") {
    TAILOR_ASSIGN_OR_RETURN(std::string suffix, get_string_or(j, "suffix", path, "</w>"));
    return Ptr(new BpeDec(std::move(suffix)));
  }
  if (type == "Sequence") {
    TAILOR_ASSIGN_OR_RETURN(const Json* arr, get_array(j, "decoders", path));
    std::vector<Ptr> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      TAILOR_ASSIGN_OR_RETURN(auto p, make_decoder((*arr)[i], cat(path, ".decoders[", i, "]")));
      if (p) parts.push_back(std::move(p));
    }
    return Ptr(new SequenceDec(std::move(parts)));
  }
  return unknown_component("decoder", type, path,
                           "ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence");
}

}  // namespace tailor::tok
