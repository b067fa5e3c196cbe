#include "grammar/vocab.h"

#include <algorithm>
#include <numeric>

namespace tailor::grammar {

int32_t TokenTrie::longest_prefix_token(std::string_view bytes, size_t* len) const {
  int32_t best = -1;
  *len = 0;
  uint32_t node = 0;
  for (size_t k = 0; k < bytes.size(); ++k) {
    // Children of `node` are the nodes at depth+1 inside its subtree; step over sibling subtrees.
    uint32_t child = node + 1, found = 0;
    while (child < end[node]) {
      if (byte[child] == uint8_t(bytes[k])) {
        found = child;
        break;
      }
      child = end[child];
    }
    if (found == 0) break;
    node = found;
    if (tok_begin[node + 1] > tok_begin[node]) {
      best = ids[tok_begin[node]];
      *len = k + 1;
    }
  }
  return best;
}

bool Vocabulary::is_eos(int32_t id) const {
  return std::find(eos_.begin(), eos_.end(), id) != eos_.end();
}

Result<std::shared_ptr<const Vocabulary>> Vocabulary::create(std::vector<std::string> token_bytes,
                                                             std::vector<int32_t> eos_ids,
                                                             std::vector<int32_t> excluded) {
  auto v = std::make_shared<Vocabulary>();
  int32_t n = int32_t(token_bytes.size());
  if (n == 0) return invalid_argument("vocabulary is empty");
  if (token_bytes.size() > size_t(INT32_MAX)) return invalid_argument("vocabulary too large");
  v->tokens_ = std::move(token_bytes);
  v->excluded_.assign(size_t(n), false);
  for (int32_t id : excluded) {
    if (id < 0 || id >= n)
      return invalid_argument(cat("excluded token id ", id, " is outside the vocabulary of ", n));
    v->excluded_[size_t(id)] = true;
  }
  for (int32_t id : eos_ids) {
    if (id < 0 || id >= n)
      return invalid_argument(cat("EOS token id ", id, " is outside the vocabulary of ", n));
    v->excluded_[size_t(id)] = true;  // EOS is handled by the grammar's end, never as bytes
  }
  std::sort(eos_ids.begin(), eos_ids.end());
  eos_ids.erase(std::unique(eos_ids.begin(), eos_ids.end()), eos_ids.end());
  v->eos_ = std::move(eos_ids);

  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t x) { h = (h ^ x) * 1099511628211ull; };
  for (int32_t i = 0; i < n; ++i) {
    const std::string& t = v->tokens_[size_t(i)];
    mix(t.size());
    for (char c : t) mix(uint8_t(c));
    mix(v->excluded_[size_t(i)] ? 7 : 3);
  }
  for (int32_t e : v->eos_) mix(uint64_t(e) + 11);
  v->fingerprint_ = h;

  // Sorted order of the token bytes is the depth-first order of the trie.
  std::vector<int32_t> order;
  order.reserve(size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    if (!v->excluded_[size_t(i)] && !v->tokens_[size_t(i)].empty()) order.push_back(i);
  }
  const auto& toks = v->tokens_;
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return toks[size_t(a)] < toks[size_t(b)]; });

  TokenTrie& t = v->trie_;
  t.byte.push_back(0);
  t.depth.push_back(0);
  std::vector<std::pair<uint32_t, int32_t>> node_tokens;  // (node, id)
  std::vector<uint32_t> path{0};                          // path[d] = node at depth d
  std::vector<uint32_t> open_end;                         // nodes whose `end` is pending, by depth
  t.end.push_back(0);
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& s = toks[size_t(id)];
    if (s.size() > 65535) return invalid_argument(cat("token ", id, " is longer than 65535 bytes"));
    size_t lcp = 0;
    if (prev) {
      size_t lim = std::min(prev->size(), s.size());
      while (lcp < lim && (*prev)[lcp] == s[lcp]) ++lcp;
    }
    // Close the nodes deeper than the common prefix.
    while (path.size() > lcp + 1) {
      t.end[path.back()] = uint32_t(t.byte.size());
      path.pop_back();
    }
    for (size_t k = lcp; k < s.size(); ++k) {
      uint32_t node = uint32_t(t.byte.size());
      t.byte.push_back(uint8_t(s[k]));
      t.depth.push_back(uint16_t(k + 1));
      t.end.push_back(0);
      path.push_back(node);
    }
    node_tokens.push_back({path.back(), id});
    t.max_depth = std::max<uint16_t>(t.max_depth, uint16_t(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    t.end[path.back()] = uint32_t(t.byte.size());
    path.pop_back();
  }
  size_t nodes = t.byte.size();
  t.tok_begin.assign(nodes + 1, 0);
  for (auto [node, id] : node_tokens) ++t.tok_begin[node + 1];
  for (size_t i = 0; i < nodes; ++i) t.tok_begin[i + 1] += t.tok_begin[i];
  t.ids.resize(node_tokens.size());
  {
    std::vector<uint32_t> fill(t.tok_begin.begin(), t.tok_begin.end() - 1);
    for (auto [node, id] : node_tokens) t.ids[fill[node]++] = id;
  }
  return std::shared_ptr<const Vocabulary>(std::move(v));
}

}  // namespace tailor::grammar
