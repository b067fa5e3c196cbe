#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {

// Code points that are stable under NFC and can never combine with what precedes them (NFC_QC=Yes, ccc=0):
// normalization never looks across them, so a text is normalized chunk by chunk between such points and the
// chunks made only of them (ASCII, Latin-1, CJK, kana, Hangul syllables, emoji) are skipped without utf8proc.
bool nfc_boundary(char32_t c) {
  return c < 0x300 || (c >= 0x400 && c < 0x483) || (c >= 0x3040 && c < 0x3099) ||
         (c >= 0x309B && c < 0x3100) || (c >= 0x3400 && c < 0x4DC0) || (c >= 0x4E00 && c < 0xA000) ||
         (c >= 0xAC00 && c < 0xD7A4) || (c >= 0x1F300 && c < 0x1FB00);
}
bool ascii_boundary(char32_t c) {
  return c < 0x80;
}

// Unicode normalization forms through utf8proc (HF uses the unicode-normalization crate; both implement UAX
// #15).
class UnicodeNorm : public Normalizer {
 public:
  UnicodeNorm(int options, bool (*boundary)(char32_t)) : options_(options), boundary_(boundary) {}
  Status normalize(std::string& s) const override {
    std::string out;
    bool changed = false;
    size_t copied = 0;  // s[0, copied) is already in out (or unchanged when !changed)
    size_t i = 0, prev = 0;
    while (i < s.size()) {
      char32_t cp;
      int n = utf8_decode_valid(s.data() + i, &cp);
      if (boundary_(cp)) {
        prev = i;
        i += size_t(n);
        continue;
      }
      // A chunk: the boundary code point before i (it may compose with what follows) up to the next boundary.
      const size_t chunk_begin = std::max(prev, copied);
      size_t j = i + size_t(n);
      while (j < s.size()) {
        char32_t c2;
        int m = utf8_decode_valid(s.data() + j, &c2);
        if (boundary_(c2)) break;
        j += size_t(m);
      }
      utf8proc_uint8_t* buf = nullptr;
      utf8proc_ssize_t len =
          utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + chunk_begin),
                       utf8proc_ssize_t(j - chunk_begin), &buf, utf8proc_option_t(options_));
      if (len < 0) return invalid_argument(cat("Unicode normalization failed: ", utf8proc_errmsg(len)));
      const std::string_view norm(reinterpret_cast<const char*>(buf), size_t(len));
      if (changed || norm != std::string_view(s).substr(chunk_begin, j - chunk_begin)) {
        if (!changed) {
          out.reserve(s.size() + 16);
          changed = true;
        }
        out.append(s, copied, chunk_begin - copied);
        out.append(norm);
        copied = j;
      }
      std::free(buf);
      prev = j;
      i = j;
    }
    if (changed) {
      out.append(s, copied, std::string::npos);
      s = std::move(out);
    }
    return {};
  }

 private:
  int options_;
  bool (*boundary_)(char32_t);
};

class Lowercase : public Normalizer {
 public:
  Status normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      char32_t cp;
      i += utf8_decode_valid(s.data() + i, &cp);
      if (cp < 0x80) {
        out += char(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      } else if (cp == 0x130) {  // Rust's full lowercase mapping: 'İ' -> "i̇"
        out += "i\xCC\x87";
      } else {
        utf8_append(out, char32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
      }
    }
    s = std::move(out);
    return {};
  }
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string p) : prepend_(std::move(p)) {}
  Status normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
    return {};
  }

 private:
  std::string prepend_;
};

class Replace : public Normalizer {
 public:
  Replace(std::string pattern, std::unique_ptr<Regex> re, std::string content)
      : pattern_(std::move(pattern)), re_(std::move(re)), content_(std::move(content)) {}
  Status normalize(std::string& s) const override {
    std::string out;
    size_t prev = 0;
    if (re_) {
      TAILOR_RETURN_IF_ERROR(re_->for_each_match(s, [&](size_t a, size_t b) {
        out.append(s, prev, a - prev);
        out += content_;
        prev = b;
      }));
    } else {
      if (pattern_.empty()) return {};
      size_t at = s.find(pattern_);
      if (at == std::string::npos) return {};
      for (; at != std::string::npos; at = s.find(pattern_, prev)) {
        out.append(s, prev, at - prev);
        out += content_;
        prev = at + pattern_.size();
      }
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
    return {};
  }

 private:
  std::string pattern_;
  std::unique_ptr<Regex> re_;
  std::string content_;
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  Status normalize(std::string& s) const override {
    size_t a = 0, b = s.size();
    if (left_) {
      while (a < b) {
        char32_t cp;
        int n = utf8_decode_valid(s.data() + a, &cp);
        if (!is_whitespace(cp)) break;
        a += n;
      }
    }
    if (right_) {
      while (b > a) {
        size_t k = b - 1;
        while (k > a && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        char32_t cp;
        utf8_decode_valid(s.data() + k, &cp);
        if (!is_whitespace(cp)) break;
        b = k;
      }
    }
    s = s.substr(a, b - a);
    return {};
  }

 private:
  bool left_, right_;
};

// Removes combining marks (Mn, Mc, Me), meant to follow NFD.
class StripAccents : public Normalizer {
 public:
  Status normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      char32_t cp;
      int n = utf8_decode_valid(s.data() + i, &cp);
      const auto cat = cp < 0x300 ? UTF8PROC_CATEGORY_LU : utf8proc_category(utf8proc_int32_t(cp));
      if (cat != UTF8PROC_CATEGORY_MN && cat != UTF8PROC_CATEGORY_MC && cat != UTF8PROC_CATEGORY_ME) {
        out.append(s, i, size_t(n));
      }
      i += n;
    }
    s = std::move(out);
    return {};
  }
};

class SequenceNorm : public Normalizer {
 public:
  explicit SequenceNorm(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  Status normalize(std::string& s) const override {
    for (auto& p : parts_) TAILOR_RETURN_IF_ERROR(p->normalize(s));
    return {};
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const Json& j, const std::string& path) {
  TAILOR_RETURN_IF_ERROR(check_nesting(path));
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  TAILOR_ASSIGN_OR_RETURN(std::string type, component_type(j, path));
  constexpr int kStable = UTF8PROC_STABLE;
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(new UnicodeNorm(kStable | UTF8PROC_COMPOSE, nfc_boundary));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(new UnicodeNorm(kStable | UTF8PROC_DECOMPOSE, ascii_boundary));
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNorm(kStable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, ascii_boundary));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNorm(kStable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, ascii_boundary));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new Lowercase());
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccents());
  if (type == "Prepend") {
    TAILOR_ASSIGN_OR_RETURN(std::string p, get_string(j, "prepend", path));
    return std::unique_ptr<Normalizer>(new Prepend(std::move(p)));
  }
  if (type == "Replace") {
    bool is_regex = false;
    TAILOR_ASSIGN_OR_RETURN(std::string pattern, get_pattern(j, "pattern", path, &is_regex));
    TAILOR_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", path));
    std::unique_ptr<Regex> re;
    if (is_regex) {
      TAILOR_ASSIGN_OR_RETURN(re, Regex::compile(pattern, path + ".pattern"));
    }
    return std::unique_ptr<Normalizer>(new Replace(std::move(pattern), std::move(re), std::move(content)));
  }
  if (type == "Strip") {
    TAILOR_ASSIGN_OR_RETURN(bool left, get_bool_or(j, "strip_left", path, true));
    TAILOR_ASSIGN_OR_RETURN(bool right, get_bool_or(j, "strip_right", path, true));
    return std::unique_ptr<Normalizer>(new Strip(left, right));
  }
  if (type == "Sequence") {
    TAILOR_ASSIGN_OR_RETURN(const Json* arr, get_array(j, "normalizers", path));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      TAILOR_ASSIGN_OR_RETURN(auto p, make_normalizer((*arr)[i], cat(path, ".normalizers[", i, "]")));
      if (p) parts.push_back(std::move(p));
    }
    return std::unique_ptr<Normalizer>(new SequenceNorm(std::move(parts)));
  }
  return unknown_component(
      "normalizer", type, path,
      "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, StripAccents, Sequence");
}

}  // namespace tailor::tok
