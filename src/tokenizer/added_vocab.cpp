#include "tokenizer/added_vocab.h"

#include "tokenizer/utf8.h"

namespace tailor::tok {

namespace {
bool is_word_char(char32_t c) {
  return c == '_' || is_alphanumeric(c);
}

// Last code point of s[0, end) (s valid UTF-8).
char32_t last_char(std::string_view s, size_t end) {
  size_t k = end - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  char32_t cp;
  utf8_decode_valid(s.data() + k, &cp);
  return cp;
}
}  // namespace

void TokenMatcher::build(const std::vector<const AddedToken*>& tokens,
                         const std::vector<std::string>& contents) {
  nodes_.assign(1, Node{});
  root_.assign(256, -1);
  edges_.clear();
  tokens_ = tokens;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& c = contents[t];
    if (c.empty()) continue;
    int32_t node = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      const uint8_t b = uint8_t(c[i]);
      int32_t next = child(node, b);
      if (next < 0) {
        next = int32_t(nodes_.size());
        nodes_.push_back(Node{});
        if (node == 0) {
          root_[b] = next;
        } else {
          edges_[(uint64_t(node) << 8) | b] = next;
        }
      }
      node = next;
    }
    // First definition wins on duplicates, as the lowest pattern id wins in HF.
    if (nodes_[size_t(node)].token < 0) nodes_[size_t(node)].token = int32_t(t);
  }
}

int32_t TokenMatcher::child(int32_t node, uint8_t b) const {
  if (node == 0) return root_[b];
  auto it = edges_.find((uint64_t(node) << 8) | b);
  return it == edges_.end() ? -1 : it->second;
}

void TokenMatcher::split(std::string_view text, bool skip_special, std::vector<Segment>& out) const {
  out.clear();
  size_t start_offset = 0;  // end of the last emitted added token
  size_t i = 0;
  while (!tokens_.empty() && i < text.size()) {
    if (root_[uint8_t(text[i])] < 0) {
      ++i;
      continue;
    }
    // Longest content starting at i.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      node = child(node, uint8_t(text[j]));
      if (node < 0) break;
      if (nodes_[size_t(node)].token >= 0) {
        best = nodes_[size_t(node)].token;
        best_end = j + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = *tokens_[size_t(best)];
    size_t start = i, stop = best_end;
    i = best_end;  // the search resumes after the match whether or not it is kept
    if (skip_special && tok.special) continue;
    if (tok.single_word) {
      const bool start_ok = start == 0 || !is_word_char(last_char(text, start));
      char32_t next_cp = 0;
      const bool stop_ok =
          stop == text.size() || (utf8_decode(text, stop, &next_cp) > 0 && !is_word_char(next_cp));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t k = s - 1;
        while (k > start_offset && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        char32_t cp;
        if (utf8_decode(text, k, &cp) == 0 || !is_whitespace(cp)) break;
        s = k;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        char32_t cp;
        int n = utf8_decode(text, stop, &cp);
        if (n == 0 || !is_whitespace(cp)) break;
        stop += size_t(n);
      }
      i = stop;
    }
    if (start_offset < start) out.push_back(Segment{start_offset, start, -1});
    out.push_back(Segment{start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size() || out.empty()) out.push_back(Segment{start_offset, text.size(), -1});
}

}  // namespace tailor::tok
