#include "grammar/pda.h"

#include <unordered_set>

namespace tailor::grammar {

bool closure(const Automaton& A, StackArena& arena, Config c, std::vector<Config>& out, size_t from) {
  if (!A.needs_closure(c.top)) {
    add_unique(out, from, c);
    return false;
  }
  // Small worklist; `seen` stops cycles through nullable callees (left recursion was rejected at build time,
  // so the set of reachable configurations is finite).
  thread_local std::vector<Config> work, seen;
  work.clear();
  seen.clear();
  work.push_back(c);
  seen.push_back(c);
  bool end = false;
  thread_local std::unordered_set<uint64_t> seen_set;  // used once `seen` grows past a linear scan's worth
  seen_set.clear();
  auto key = [](Config y) {
    return ((uint64_t(uint32_t(y.top)) << 32) | uint32_t(y.parent)) ^
           (uint64_t(y.count) * 0x9E3779B97F4A7C15ull);
  };
  auto visit = [&](Config y) {
    if (seen.size() < 32) {
      for (const Config& s : seen) {
        if (s == y) return;
      }
      if (seen.size() == 31) {
        for (const Config& s : seen) seen_set.insert(key(s));
        seen_set.insert(key(y));
      }
    } else {
      if (seen.size() >= 4 * kMaxConfigs) {
        t_truncated = true;
        return;
      }
      if (!seen_set.insert(key(y)).second) return;
    }
    seen.push_back(y);
    work.push_back(y);
  };
  while (!work.empty()) {
    Config x = work.back();
    work.pop_back();
    const Automaton::State& st = A.states[size_t(x.top)];
    if (st.flags & Automaton::kHasBytes) add_unique(out, from, x);
    for (uint32_t k = st.calls_begin; k < st.calls_end; ++k) {
      const Automaton::Call& call = A.calls[k];
      int32_t p = arena.push(call.ret, x.parent);
      visit({A.rules[call.rule].start, p});
    }
    if (st.flags & Automaton::kFinal) {
      if (x.parent < 0) {
        end = true;
      } else {
        visit({arena.state(x.parent), arena.parent(x.parent)});
      }
    }
  }
  return end;
}

}  // namespace tailor::grammar
