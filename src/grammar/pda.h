// Pushdown execution shared by the compiler's token classification and the matcher: configurations (a DFA
// state on top of an interned stack of return states), closure over calls and returns, byte steps, and the
// walk of a token-trie subtree. Internal to src/grammar.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "grammar/automaton.h"
#include "grammar/vocab.h"

namespace tailor::grammar {

// The current DFA state plus the stack below it. parent = -1 is the bottom: returning from there means the
// outermost rule ended (at run time: the grammar can end; in compile-time classification: the classified
// rule returned to an unknown caller).
// count: items completed in a counted-loop rule (0 elsewhere; counted rules make no calls, so it never needs
// saving on the stack).
struct Config {
  int32_t top;
  int32_t parent;
  uint32_t count = 0;
  bool operator==(const Config&) const = default;
};

// Interned stack frames: equal stacks get equal ids, so configurations compare by value.
class StackArena {
 public:
  int32_t push(int32_t state, int32_t parent) {
    uint64_t key = (uint64_t(uint32_t(state)) << 32) | uint32_t(parent);
    auto [it, fresh] = index_.try_emplace(key, int32_t(nodes_.size()));
    if (fresh) nodes_.push_back({state, parent});
    return it->second;
  }
  int32_t state(int32_t node) const { return nodes_[size_t(node)].first; }
  int32_t parent(int32_t node) const { return nodes_[size_t(node)].second; }
  size_t size() const { return nodes_.size(); }
  void clear() {
    nodes_.clear();
    index_.clear();
  }
  // Compile-time classification of counted-loop states counts items without enforcing the bounds (the
  // bounds become per-token conditions on the run-time count).
  bool ignore_bounds = false;

 private:
  std::vector<std::pair<int32_t, int32_t>> nodes_;
  std::unordered_map<uint64_t, int32_t> index_;
};

// Highly ambiguous grammars (e.g. `a ::= "x" a{3,5} | ""` nested) can have exponentially many stacks after a
// few bytes. Sets are cut at this size, deterministically (first come first kept). Every kept configuration
// can still complete, so a cut only narrows the generated language; when it happens the flag is raised and
// the matcher computes masks by walking the trie from its exact configuration set, so that masks and
// accept_token stay consistent.
constexpr size_t kMaxConfigs = 64;
inline thread_local bool t_truncated = false;

inline void add_unique(std::vector<Config>& out, size_t from, Config c) {
  for (size_t i = from; i < out.size(); ++i) {
    if (out[i] == c) return;
  }
  if (out.size() - from >= kMaxConfigs) {
    t_truncated = true;
    return;
  }
  out.push_back(c);
}

// Expands c through calls (push) and returns (pop) into the configurations that can consume a byte, appended
// to out (deduplicated against out[from..]). Returns true when the bottom of the stack was returned from.
bool closure(const Automaton& A, StackArena& arena, Config c, std::vector<Config>& out, size_t from);

// One byte from c without closure: the target state, with the counted-loop rules applied (leaving the head
// into the item needs count < max, into the terminator count >= min; reaching the head counts one item).
inline bool step_config(const Automaton& A, bool ignore_bounds, const Config& c, uint8_t b, Config* out) {
  const int32_t t = A.step(c.top, b);
  if (t < 0) return false;
  uint32_t count = c.count;
  if (A.states[size_t(c.top)].flags & Automaton::kCounted) {
    const Automaton::RuleInfo& r = A.rules[A.states[size_t(c.top)].rule];
    if (c.top == r.start && !ignore_bounds) {
      if (A.states[size_t(t)].flags & Automaton::kLoopTail) {
        if (count < r.loop_min) return false;
      } else if (r.loop_max != kUnbounded && count >= r.loop_max) {
        return false;
      }
    }
    if (t == r.start) ++count;
  }
  *out = {t, c.parent, count};
  return true;
}

// Moves every configuration of in[0..n) by byte b, appending the closed results to out (from = out.size() at
// entry). `in` must not alias out. Returns the bottom-reached flag.
inline bool step_all(const Automaton& A, StackArena& arena, const Config* in, size_t n, uint8_t b,
                     std::vector<Config>& out) {
  size_t from = out.size();
  bool end = false;
  for (size_t i = 0; i < n; ++i) {
    Config x;
    if (!step_config(A, arena.ignore_bounds, in[i], b, &x)) continue;
    if (!A.needs_closure(x.top)) {
      if (n == 1) {
        out.push_back(x);
      } else {
        add_unique(out, from, x);
      }
      continue;
    }
    end |= closure(A, arena, x, out, from);
  }
  return end;
}

inline void or_allowed(std::array<uint64_t, 4>& acc, const std::array<uint64_t, 4>& x) {
  for (int k = 0; k < 4; ++k) acc[k] |= x[k];
}
inline bool test_byte(const std::array<uint64_t, 4>& s, uint8_t b) {
  return (s[b >> 6] >> (b & 63)) & 1;
}

// Walks the descendants of trie node `root` starting from configurations `start`. For every node whose bytes
// (relative to root) can be consumed, calls on_tokens(node); for every node where the bottom was reached and
// that has children, calls on_bottom(node) (those children are not walked). Scratch buffers live in `ws`.
struct WalkScratch {
  std::vector<Config> pool;
  std::vector<uint32_t> level;                 // level[d]..level[d+1]: configs after d bytes
  std::vector<std::array<uint64_t, 4>> bytes;  // union of allowed bytes per level
};

template <class OnTokens, class OnBottom>
void walk_trie(const Automaton& A, const TokenTrie& trie, StackArena& arena, uint32_t root,
               const Config* start, size_t n_start, WalkScratch& ws, OnTokens&& on_tokens,
               OnBottom&& on_bottom) {
  const uint16_t base = trie.depth[root];
  const size_t max_rel = size_t(trie.max_depth - base) + 2;
  ws.level.assign(max_rel + 1, 0);
  ws.bytes.resize(max_rel + 1);
  ws.pool.assign(start, start + n_start);
  ws.level[0] = 0;
  ws.level[1] = uint32_t(n_start);
  ws.bytes[0] = {0, 0, 0, 0};
  for (size_t k = 0; k < n_start; ++k) or_allowed(ws.bytes[0], A.allowed[size_t(start[k].top)]);
  const uint8_t* tbyte = trie.byte.data();
  const uint16_t* tdepth = trie.depth.data();
  const uint32_t* tend = trie.end.data();
  const int32_t* next = A.next.data();
  const size_t C = A.n_classes;
  uint32_t i = root + 1;
  const uint32_t stop = tend[root];
  while (i < stop) {
    const uint32_t d = tdepth[i] - base;  // >= 1
    const uint8_t b = tbyte[i];
    const uint32_t pb = ws.level[d - 1], pe = ws.level[d];
    if (pe - pb == 1 && !A.counted(ws.pool[pb].top)) {
      // Fast path: one configuration, and the byte leads to a state that needs no call/return expansion.
      const Config c = ws.pool[pb];
      const int32_t t = next[size_t(c.top) * C + A.byte_class[b]];
      if (t < 0) {
        i = tend[i];
        continue;
      }
      if (!A.needs_closure(t)) {
        on_tokens(i);
        if (tend[i] != i + 1) {  // has children: they read this level
          ws.pool.resize(pe + 1);
          ws.pool[pe] = {t, c.parent, 0};
          ws.level[d + 1] = pe + 1;
          ws.bytes[d] = A.allowed[size_t(t)];
        }
        ++i;
        continue;
      }
    } else if (pe - pb != 1 && !test_byte(ws.bytes[d - 1], b)) {
      i = tend[i];
      continue;
    }
    ws.pool.resize(pe);
    bool end;
    if (pe - pb == 1) {
      Config c = ws.pool[pb];
      end = step_all(A, arena, &c, 1, b, ws.pool);
    } else {
      // Parent configs sit in the pool below the write position; copy them out since the pool may grow.
      thread_local std::vector<Config> parent;
      parent.assign(ws.pool.begin() + pb, ws.pool.begin() + pe);
      end = step_all(A, arena, parent.data(), parent.size(), b, ws.pool);
    }
    const uint32_t n_new = uint32_t(ws.pool.size()) - pe;
    if (n_new == 0 && !end) {
      i = tend[i];
      continue;
    }
    on_tokens(i);
    if (end && tend[i] > i + 1) on_bottom(i);
    if (n_new == 0) {
      i = tend[i];
      continue;
    }
    ws.level[d + 1] = uint32_t(ws.pool.size());
    auto& acc = ws.bytes[d];
    acc = {0, 0, 0, 0};
    for (uint32_t k = pe; k < ws.level[d + 1]; ++k) or_allowed(acc, A.allowed[size_t(ws.pool[k].top)]);
    ++i;
  }
}

}  // namespace tailor::grammar
