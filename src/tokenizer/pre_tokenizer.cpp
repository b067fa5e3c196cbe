#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace tailor::tok {

void PieceList::reset(std::string_view text, bool at_text_start) {
  buf.assign(text);
  pieces.clear();
  if (!buf.empty()) pieces.push_back(Piece{0, uint32_t(buf.size()), at_text_start});
}

namespace {

using Span = std::pair<uint32_t, uint32_t>;
// Appends the [start, end) byte ranges of the delimiters found in a piece.
using Finder = std::function<Status(std::string_view text, std::vector<Span>& matches)>;

struct Seg {
  uint32_t a, b;
  bool match;
};

// HF NormalizedString::split: turns the matches into a cover of the piece, then merges or drops delimiters
// per behavior. Empty results are dropped, as PreTokenizedString::split does.
void apply_behavior(std::vector<Seg>& segs, SplitBehavior behavior, std::vector<Span>& out) {
  out.clear();
  switch (behavior) {
    case SplitBehavior::removed:
      for (auto& s : segs)
        if (!s.match) out.push_back({s.a, s.b});
      break;
    case SplitBehavior::isolated:
      for (auto& s : segs) out.push_back({s.a, s.b});
      break;
    case SplitBehavior::merged_with_previous: {
      bool prev_match = false;
      for (auto& s : segs) {
        if (s.match && !prev_match && !out.empty()) {
          out.back().second = s.b;
        } else {
          out.push_back({s.a, s.b});
        }
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::merged_with_next: {
      bool prev_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        auto& s = segs[k];
        if (s.match && !prev_match && !out.empty()) {
          out.back().first = s.a;
        } else {
          out.push_back({s.a, s.b});
        }
        prev_match = s.match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case SplitBehavior::contiguous: {
      bool prev_match = false;
      for (auto& s : segs) {
        if (s.match == prev_match && !out.empty()) {
          out.back().second = s.b;
        } else {
          out.push_back({s.a, s.b});
        }
        prev_match = s.match;
      }
      break;
    }
  }
}

Status split_pieces(PieceList& pl, const Finder& find, SplitBehavior behavior, bool invert) {
  std::vector<Piece> next;
  next.reserve(pl.pieces.size() * 2);
  std::vector<Span> matches, ranges;
  std::vector<Seg> segs;
  for (const Piece& p : pl.pieces) {
    std::string_view text = pl.text(p);
    matches.clear();
    TAILOR_RETURN_IF_ERROR(find(text, matches));
    segs.clear();
    uint32_t prev = 0;
    for (auto [a, b] : matches) {
      if (prev != a) segs.push_back({prev, a, invert});
      segs.push_back({a, b, !invert});
      prev = b;
    }
    if (prev != text.size()) segs.push_back({prev, uint32_t(text.size()), invert});
    apply_behavior(segs, behavior, ranges);
    for (auto [a, b] : ranges) {
      if (a == b) continue;
      next.push_back(Piece{p.begin + a, p.begin + b, p.at_text_start && a == 0});
    }
  }
  pl.pieces.swap(next);
  return {};
}

Finder regex_finder(const Regex* re) {
  return [re](std::string_view text, std::vector<Span>& m) {
    return re->for_each_match(text, [&](size_t a, size_t b) { m.push_back({uint32_t(a), uint32_t(b)}); });
  };
}

Finder literal_finder(std::string lit) {
  return [lit = std::move(lit)](std::string_view text, std::vector<Span>& m) -> Status {
    if (lit.empty()) return {};
    for (size_t at = text.find(lit); at != std::string_view::npos; at = text.find(lit, at + lit.size())) {
      m.push_back({uint32_t(at), uint32_t(at + lit.size())});
    }
    return {};
  };
}

// One match per code point satisfying pred (HF's `split(char predicate, ...)`).
Finder char_finder(std::function<bool(char32_t)> pred) {
  return [pred = std::move(pred)](std::string_view text, std::vector<Span>& m) -> Status {
    for (size_t i = 0; i < text.size();) {
      char32_t cp;
      int n = utf8_decode_valid(text.data() + i, &cp);
      if (pred(cp)) m.push_back({uint32_t(i), uint32_t(i + n)});
      i += n;
    }
    return {};
  };
}

// Rewrites every piece through fn (a piece may grow), keeping piece boundaries.
void rewrite_pieces(PieceList& pl,
                    const std::function<void(const Piece&, std::string_view, std::string&)>& fn) {
  std::string buf;
  buf.reserve(pl.buf.size() + pl.pieces.size());
  for (Piece& p : pl.pieces) {
    uint32_t begin = uint32_t(buf.size());
    fn(p, pl.text(p), buf);
    p.begin = begin;
    p.end = uint32_t(buf.size());
  }
  pl.buf.swap(buf);
}

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Finder f, SplitBehavior b, bool invert, std::unique_ptr<Regex> re)
      : find_(std::move(f)), behavior_(b), invert_(invert), re_(std::move(re)) {}
  Status apply(PieceList& pl) const override { return split_pieces(pl, find_, behavior_, invert_); }

 private:
  Finder find_;
  SplitBehavior behavior_;
  bool invert_;
  std::unique_ptr<Regex> re_;  // owned here, referenced by find_
};

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, std::unique_ptr<Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  Status apply(PieceList& pl) const override {
    if (add_prefix_space_) {
      rewrite_pieces(pl, [](const Piece&, std::string_view t, std::string& out) {
        if (t.empty() || t[0] != ' ') out += ' ';
        out.append(t);
      });
    }
    if (re_) return split_pieces(pl, regex_finder(re_.get()), SplitBehavior::isolated, false);
    return {};
  }
  bool is_byte_level() const override { return true; }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

class MetaspacePre : public PreTokenizer {
 public:
  enum class Prepend { always, first, never };
  MetaspacePre(std::string repl, Prepend prepend, bool split)
      : repl_(std::move(repl)), prepend_(prepend), split_(split) {}
  Status apply(PieceList& pl) const override {
    rewrite_pieces(pl, [&](const Piece& p, std::string_view t, std::string& out) {
      const bool starts = t.substr(0, repl_.size()) == repl_ || (!t.empty() && t[0] == ' ');
      if (!starts && (prepend_ == Prepend::always || (prepend_ == Prepend::first && p.at_text_start)))
        out += repl_;
      for (char c : t) {
        if (c == ' ') {
          out += repl_;
        } else {
          out += c;
        }
      }
    });
    if (split_) return split_pieces(pl, literal_finder(repl_), SplitBehavior::merged_with_next, false);
    return {};
  }

 private:
  std::string repl_;
  Prepend prepend_;
  bool split_;
};

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  Status apply(PieceList& pl) const override {
    for (auto& p : parts_) TAILOR_RETURN_IF_ERROR(p->apply(pl));
    return {};
  }
  bool is_byte_level() const override { return !parts_.empty() && parts_.back()->is_byte_level(); }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Result<SplitBehavior> parse_behavior(const Json& j, const std::string& path, SplitBehavior def) {
  TAILOR_ASSIGN_OR_RETURN(std::string b, get_string_or(j, "behavior", path, ""));
  if (b.empty()) return def;
  if (b == "Removed") return SplitBehavior::removed;
  if (b == "Isolated") return SplitBehavior::isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (b == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (b == "Contiguous") return SplitBehavior::contiguous;
  return invalid_argument(
      cat(path, ".behavior: unknown value \"", b,
          "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)"));
}

std::unique_ptr<PreTokenizer> make_split(Finder f, SplitBehavior b, bool invert = false) {
  return std::make_unique<SplitPre>(std::move(f), b, invert, nullptr);
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const Json& j, const std::string& path) {
  TAILOR_RETURN_IF_ERROR(check_nesting(path));
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (j.is_null()) return Ptr();
  TAILOR_ASSIGN_OR_RETURN(std::string type, component_type(j, path));
  if (type == "Split") {
    bool is_regex = false;
    TAILOR_ASSIGN_OR_RETURN(std::string pattern, get_pattern(j, "pattern", path, &is_regex));
    TAILOR_ASSIGN_OR_RETURN(SplitBehavior b, parse_behavior(j, path, SplitBehavior::isolated));
    TAILOR_ASSIGN_OR_RETURN(bool invert, get_bool_or(j, "invert", path, false));
    if (!is_regex) return Ptr(new SplitPre(literal_finder(pattern), b, invert, nullptr));
    TAILOR_ASSIGN_OR_RETURN(auto re, Regex::compile(pattern, path + ".pattern.Regex"));
    Finder f = regex_finder(re.get());
    return Ptr(new SplitPre(std::move(f), b, invert, std::move(re)));
  }
  if (type == "ByteLevel") {
    TAILOR_ASSIGN_OR_RETURN(bool prefix, get_bool_or(j, "add_prefix_space", path, true));
    TAILOR_ASSIGN_OR_RETURN(bool use_regex, get_bool_or(j, "use_regex", path, true));
    std::unique_ptr<Regex> re;
    if (use_regex) {
      TAILOR_ASSIGN_OR_RETURN(re, Regex::compile(kGpt2Pattern, path + " (GPT-2 pattern)"));
    }
    return Ptr(new ByteLevelPre(prefix, std::move(re)));
  }
  if (type == "Metaspace") {
    TAILOR_ASSIGN_OR_RETURN(std::string repl, get_string_or(j, "replacement", path, "\xE2\x96\x81"));
    TAILOR_ASSIGN_OR_RETURN(bool split, get_bool_or(j, "split", path, true));
    TAILOR_ASSIGN_OR_RETURN(bool add_prefix, get_bool_or(j, "add_prefix_space", path, true));
    TAILOR_ASSIGN_OR_RETURN(std::string scheme, get_string_or(j, "prepend_scheme", path, ""));
    MetaspacePre::Prepend p = add_prefix ? MetaspacePre::Prepend::always : MetaspacePre::Prepend::never;
    if (scheme == "always") {
      p = MetaspacePre::Prepend::always;
    } else if (scheme == "first") {
      p = MetaspacePre::Prepend::first;
    } else if (scheme == "never") {
      p = MetaspacePre::Prepend::never;
    } else if (!scheme.empty()) {
      return invalid_argument(
          cat(path, ".prepend_scheme: unknown value \"", scheme, "\" (expected always, first or never)"));
    }
    return Ptr(new MetaspacePre(std::move(repl), p, split));
  }
  if (type == "Digits") {
    TAILOR_ASSIGN_OR_RETURN(bool individual, get_bool_or(j, "individual_digits", path, false));
    return make_split(char_finder(is_numeric),
                      individual ? SplitBehavior::isolated : SplitBehavior::contiguous);
  }
  if (type == "WhitespaceSplit") return make_split(char_finder(is_whitespace), SplitBehavior::removed);
  if (type == "Whitespace") {
    TAILOR_ASSIGN_OR_RETURN(auto re, Regex::compile(R"(\w+|[^\w\s]+)", path));
    Finder f = regex_finder(re.get());
    return Ptr(new SplitPre(std::move(f), SplitBehavior::removed, /*invert=*/true, std::move(re)));
  }
  if (type == "Punctuation") {
    TAILOR_ASSIGN_OR_RETURN(SplitBehavior b, parse_behavior(j, path, SplitBehavior::isolated));
    return make_split(char_finder(is_punctuation), b);
  }
  if (type == "BertPreTokenizer") {
    std::vector<Ptr> parts;
    parts.push_back(make_split(char_finder(is_whitespace), SplitBehavior::removed));
    parts.push_back(make_split(char_finder(is_punctuation), SplitBehavior::isolated));
    return Ptr(new SequencePre(std::move(parts)));
  }
  if (type == "CharDelimiterSplit") {
    TAILOR_ASSIGN_OR_RETURN(std::string d, get_string(j, "delimiter", path));
    char32_t cp = 0;
    if (utf8_decode(d, 0, &cp) != int(d.size()) || d.empty()) {
      return invalid_argument(cat(path, ".delimiter: expected exactly one character"));
    }
    return make_split(char_finder([cp](char32_t c) { return c == cp; }), SplitBehavior::removed);
  }
  if (type == "Sequence") {
    TAILOR_ASSIGN_OR_RETURN(const Json* arr, get_array(j, "pretokenizers", path));
    std::vector<Ptr> parts;
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string sub = cat(path, ".pretokenizers[", i, "]");
      TAILOR_ASSIGN_OR_RETURN(auto p, make_pre_tokenizer((*arr)[i], sub));
      if (!p) continue;
      if (!parts.empty() && parts.back()->is_byte_level()) {
        return unsupported(
            cat(sub, ": a pre-tokenizer after ByteLevel is not supported (ByteLevel must come last)"));
      }
      parts.push_back(std::move(p));
    }
    return Ptr(new SequencePre(std::move(parts)));
  }
  return unknown_component("pre-tokenizer", type, path,
                           "Split, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, "
                           "BertPreTokenizer, CharDelimiterSplit, Sequence");
}

}  // namespace tailor::tok
