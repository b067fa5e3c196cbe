#include "grammar/matcher.h"

#include <algorithm>
#include <cstring>

namespace tailor::grammar {

namespace {
std::string json_escape_bytes(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    uint8_t c = uint8_t(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7F) {
      out += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}
}  // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar)
    : g_(std::move(grammar)), A_(&g_->automaton()) {
  reset();
}

void GrammarMatcher::reset() {
  arena_.clear();
  history_.clear();
  Snapshot s;
  t_truncated = false;
  s.can_end = closure(*A_, arena_, {A_->root_start(), -1}, s.configs, 0);
  s.truncated = t_truncated;
  history_.push_back(std::move(s));
}

bool GrammarMatcher::advance(const Snapshot& from, std::string_view bytes, Snapshot* to) {
  if (from.terminated) return false;
  tmp_a_.assign(from.configs.begin(), from.configs.end());
  t_truncated = false;
  bool end = from.can_end && bytes.empty();
  for (size_t k = 0; k < bytes.size(); ++k) {
    tmp_b_.clear();
    end = step_all(*A_, arena_, tmp_a_.data(), tmp_a_.size(), uint8_t(bytes[k]), tmp_b_);
    if (tmp_b_.empty() && !(end && k + 1 == bytes.size())) return false;
    tmp_a_.swap(tmp_b_);
  }
  to->configs.assign(tmp_a_.begin(), tmp_a_.end());
  to->can_end = end;
  to->terminated = false;
  to->truncated = t_truncated;
  return true;
}

bool GrammarMatcher::accept_token(int32_t id) {
  const Vocabulary& v = g_->vocab();
  if (id < 0 || id >= v.size()) return false;
  if (v.is_eos(id)) {
    if (!can_end()) return false;
    Snapshot s;
    s.terminated = true;
    history_.push_back(std::move(s));
    return true;
  }
  if (v.is_excluded(id)) return false;
  const std::string& bytes = v.token_bytes(id);
  if (bytes.empty()) return false;
  Snapshot s;
  if (!advance(cur(), bytes, &s)) return false;
  history_.push_back(std::move(s));
  return true;
}

Status GrammarMatcher::accept(int32_t token) {
  if (accept_token(token)) return {};
  const Vocabulary& v = g_->vocab();
  if (token < 0 || token >= v.size()) {
    return invalid_argument(cat("grammar: token id ", token, " is outside the vocabulary of ", v.size()));
  }
  if (cur().terminated)
    return invalid_argument(cat("grammar: token ", token, " after the end of the output"));
  return invalid_argument(
      cat("grammar: token ", token, " (", json_escape_bytes(v.token_bytes(token)), ") is not allowed here"));
}

int32_t GrammarMatcher::finishing_token() {
  const Vocabulary& v = g_->vocab();
  const std::string rest = shortest_completion();
  if (rest.empty()) return v.eos_ids().empty() ? -1 : v.eos_ids()[0];
  size_t len = 0;
  return v.trie().longest_prefix_token(rest, &len);
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  Snapshot s;
  if (!advance(cur(), bytes, &s)) return false;
  history_.push_back(std::move(s));
  return true;
}

void GrammarMatcher::rollback(size_t n) {
  n = std::min(n, history_.size() - 1);
  history_.resize(history_.size() - n);
}

std::shared_ptr<const std::vector<int32_t>> GrammarMatcher::returns_for(const Config& c, int32_t cls) {
  // Key: the class and the stack content below the top (states, not arena ids, so matchers share it).
  key_.clear();
  auto put = [&](int32_t v) { key_.append(reinterpret_cast<const char*>(&v), sizeof v); };
  const TokenClass& tc = g_->token_class(cls);
  put(cls);
  if (tc.counted) put(int32_t(tc.interval(c.count)));  // which return nodes are open depends on the count
  for (int32_t p = c.parent; p >= 0; p = arena_.parent(p)) put(arena_.state(p));
  if (auto hit = g_->find_returns(key_)) return hit;

  auto ids = std::make_shared<std::vector<int32_t>>();
  t_truncated = false;
  if (c.parent >= 0) {
    // The top rule returns: continue in the caller, then walk each return node's subtree from there.
    std::vector<Config> ctx;
    closure(*A_, arena_, {arena_.state(c.parent), arena_.parent(c.parent)}, ctx, 0);
    if (!ctx.empty()) {
      const TokenTrie& trie = g_->vocab().trie();
      std::vector<uint32_t> counted_nodes;
      if (tc.counted) {
        for (const CountedExit& e : tc.cexits) {
          if (e.lo <= c.count && c.count <= e.hi) counted_nodes.push_back(e.node);
        }
      }
      for (uint32_t node : tc.counted ? counted_nodes : tc.exits) {
        walk_trie(
            *A_, trie, arena_, node, ctx.data(), ctx.size(), ws_,
            [&](uint32_t n) {
              for (uint32_t j = trie.tok_begin[n]; j < trie.tok_begin[n + 1]; ++j)
                ids->push_back(trie.ids[j]);
            },
            [](uint32_t) {});
      }
      std::sort(ids->begin(), ids->end());
      ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
    }
  }
  if (t_truncated) return nullptr;  // the caller falls back to an exact walk
  std::shared_ptr<const std::vector<int32_t>> out = std::move(ids);
  g_->store_returns(key_, out);
  return out;
}

void GrammarMatcher::fill_next_token_mask(std::span<uint32_t> mask) {
  const Vocabulary& v = g_->vocab();
  const size_t words = v.mask_words();
  TAILOR_CHECK(mask.size() >= words) << "token mask has " << mask.size() << " words, the vocabulary needs "
                                     << words;
  const Snapshot& s = cur();
  if (s.truncated) return fill_by_walk(mask);
  bool first = true;
  for (const Config& c : s.configs) {
    int32_t cls = g_->class_of(c.top);
    const TokenClass& tc_full = g_->token_class(cls);
    if (tc_full.inexact) return fill_by_walk(mask);
    std::shared_ptr<const TokenClass> counted_part;
    if (tc_full.counted) counted_part = g_->counted_mask(cls, c.count);
    const TokenClass& tc = tc_full.counted ? *counted_part : tc_full;
    if (!tc.dense.empty()) {
      if (first) {
        std::memcpy(mask.data(), tc.dense.data(), words * sizeof(uint32_t));
      } else {
        for (size_t w = 0; w < words; ++w) mask[w] |= tc.dense[w];
      }
    } else {
      if (first) std::memset(mask.data(), 0, words * sizeof(uint32_t));
      for (int32_t id : tc.sparse) mask[size_t(id) >> 5] |= 1u << (id & 31);
    }
    first = false;
    if (!tc_full.exits.empty() || !tc_full.cexits.empty()) {
      auto extra = returns_for(c, cls);
      if (!extra) return fill_by_walk(mask);
      for (int32_t id : *extra) mask[size_t(id) >> 5] |= 1u << (id & 31);
    }
  }
  if (first) std::memset(mask.data(), 0, words * sizeof(uint32_t));
  if (s.can_end && !s.terminated) {
    for (int32_t id : v.eos_ids()) mask[size_t(id) >> 5] |= 1u << (id & 31);
  }
  // Bits past the vocabulary (padding of the last word, extra words) stay clear.
  if (v.size() % 32) mask[words - 1] &= (1u << (v.size() % 32)) - 1;
  if (mask.size() > words) std::memset(mask.data() + words, 0, (mask.size() - words) * sizeof(uint32_t));
}

// The exact mask by walking the token trie from the current configurations with the same steps accept_token
// takes: used when a configuration set was cut, where per-class data and accept_token could disagree.
void GrammarMatcher::fill_by_walk(std::span<uint32_t> mask) {
  const Vocabulary& v = g_->vocab();
  const size_t words = v.mask_words();
  std::memset(mask.data(), 0, mask.size() * sizeof(uint32_t));
  const Snapshot& s = cur();
  const TokenTrie& trie = v.trie();
  if (!s.terminated && !s.configs.empty()) {
    walk_trie(
        *A_, trie, arena_, 0, s.configs.data(), s.configs.size(), ws_,
        [&](uint32_t n) {
          for (uint32_t j = trie.tok_begin[n]; j < trie.tok_begin[n + 1]; ++j) {
            mask[size_t(trie.ids[j]) >> 5] |= 1u << (trie.ids[j] & 31);
          }
        },
        [](uint32_t) {});
  }
  if (s.can_end && !s.terminated) {
    for (int32_t id : v.eos_ids()) mask[size_t(id) >> 5] |= 1u << (id & 31);
  }
  (void)words;
}

std::string GrammarMatcher::jump_forward(size_t max_bytes) const {
  std::string out;
  if (cur().terminated) return out;
  std::vector<Config> a = cur().configs, b;
  bool end = cur().can_end;
  while (out.size() < max_bytes && !end && !a.empty()) {
    std::array<uint64_t, 4> bytes{0, 0, 0, 0};
    for (const Config& c : a) or_allowed(bytes, A_->allowed[size_t(c.top)]);
    int count = 0, only = -1;
    for (int k = 0; k < 4; ++k) count += __builtin_popcountll(bytes[k]);
    if (count != 1) break;
    for (int x = 0; x < 256; ++x) {
      if (test_byte(bytes, uint8_t(x))) only = x;
    }
    b.clear();
    end = step_all(*A_, arena_, a.data(), a.size(), uint8_t(only), b);
    if (b.empty() && !end) break;  // the byte needs a count the loop does not have
    out += char(only);
    a.swap(b);
  }
  return out;
}

std::string GrammarMatcher::shortest_completion(size_t max_bytes) const {
  std::string out;
  if (cur().terminated) return out;
  std::vector<Config> a = cur().configs, b;
  bool end = cur().can_end;
  while (!end && !a.empty() && out.size() < max_bytes) {
    // Cost of finishing from a configuration: the top's distance plus every pending return state's distance.
    uint64_t best_cost = UINT64_MAX;
    int best = -1;
    for (const Config& c : a) {
      int byte = A_->best_byte[size_t(c.top)];
      uint64_t cost = A_->dist[size_t(c.top)];
      if (A_->counted(c.top)) {
        // Items still owed to the loop minimum, and the byte that starts one when at the head.
        const Automaton::RuleInfo& r = A_->rules[A_->states[size_t(c.top)].rule];
        if (!(A_->states[size_t(c.top)].flags & Automaton::kLoopTail)) {
          uint64_t done = c.count + (c.top == r.start ? 0 : 1);
          if (done < r.loop_min) cost += (r.loop_min - done) * uint64_t(r.item_min_len);
          if (c.top == r.start && c.count < r.loop_min) byte = r.head_item_byte;
        }
      }
      if (byte < 0) continue;
      for (int32_t p = c.parent; p >= 0; p = arena_.parent(p)) cost += A_->dist[size_t(arena_.state(p))];
      if (cost < best_cost) {
        best_cost = cost;
        best = byte;
      }
    }
    if (best < 0) {
      // No configuration advertises a shortest byte: take any allowed one (cannot happen in a trimmed
      // automaton).
      for (int x = 0; x < 256 && best < 0; ++x) {
        if (A_->allows(a[0].top, uint8_t(x))) best = x;
      }
    }
    b.clear();
    end = step_all(*A_, arena_, a.data(), a.size(), uint8_t(best), b);
    out += char(best);
    a.swap(b);
  }
  return out;
}

}  // namespace tailor::grammar
