// Passes over a built automaton: left-recursion check, byte sets, shortest-completion distances.
#include <algorithm>
#include <functional>
#include <queue>

#include "grammar/automaton_passes.h"

namespace tailor::grammar {

namespace {
constexpr uint32_t kInf = UINT32_MAX / 4;
}  // namespace

// A rule that can reach a call to itself without consuming a byte.
Status check_left_recursion(const Automaton& A) {
  size_t R = A.rules.size();
  std::vector<uint8_t> nullable(R, 0);
  auto zero_byte_reach = [&](uint32_t r, std::vector<int32_t>& out) {
    out.clear();
    std::vector<int32_t> work{A.rules[r].start};
    std::vector<int32_t> seen{A.rules[r].start};
    while (!work.empty()) {
      int32_t s = work.back();
      work.pop_back();
      out.push_back(s);
      for (uint32_t k = A.states[s].calls_begin; k < A.states[s].calls_end; ++k) {
        const Automaton::Call& c = A.calls[k];
        if (nullable[c.rule] && std::find(seen.begin(), seen.end(), c.ret) == seen.end()) {
          seen.push_back(c.ret);
          work.push_back(c.ret);
        }
      }
    }
  };
  std::vector<int32_t> reach;
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < R; ++r) {
      if (nullable[r]) continue;
      zero_byte_reach(r, reach);
      for (int32_t s : reach) {
        if (A.final(s)) {
          nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  std::vector<std::vector<uint32_t>> left(R);
  for (uint32_t r = 0; r < R; ++r) {
    zero_byte_reach(r, reach);
    for (int32_t s : reach) {
      for (uint32_t k = A.states[s].calls_begin; k < A.states[s].calls_end; ++k)
        left[r].push_back(A.calls[k].rule);
    }
  }
  {
    std::vector<uint8_t> color(R, 0);
    std::vector<uint32_t> path;
    std::string cycle;
    std::function<bool(uint32_t)> dfs = [&](uint32_t r) -> bool {
      color[r] = 1;
      path.push_back(r);
      for (uint32_t c : left[r]) {
        if (color[c] == 1) {
          auto it = std::find(path.begin(), path.end(), c);
          for (; it != path.end(); ++it) cycle += A.rules[*it].name + " -> ";
          cycle += A.rules[c].name;
          return true;
        }
        if (color[c] == 0 && dfs(c)) return true;
      }
      path.pop_back();
      color[r] = 2;
      return false;
    };
    for (uint32_t r = 0; r < R; ++r) {
      if (color[r] == 0 && dfs(r)) {
        return invalid_argument(
            cat("grammar: left recursion (", cycle,
                ") can recurse without consuming input; rewrite it with repetition, e.g. "
                "`expr ::= term (\"+\" term)*` instead of `expr ::= expr \"+\" term | term`"));
      }
    }
  }

  return {};
}

void compute_byte_sets_and_distances(Automaton& A) {
  const size_t m = A.states.size();
  const size_t R = A.rules.size();
  const uint32_t C = A.n_classes;
  // 7. Byte sets per state.
  A.allowed.assign(m, {0, 0, 0, 0});
  for (size_t s = 0; s < m; ++s) {
    for (int b = 0; b < 256; ++b) {
      if (A.next[s * C + A.byte_class[b]] >= 0) A.allowed[s][b >> 6] |= uint64_t(1) << (b & 63);
    }
  }

  // 8. Shortest completions (bytes to the rule's end), iterating rule minimum lengths to a fixed point.
  {
    std::vector<std::vector<std::pair<int32_t, int32_t>>> pred(m);  // t -> (s, callee or -1)
    for (size_t s = 0; s < m; ++s) {
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = A.next[s * C + c];
        if (t >= 0) pred[t].push_back({int32_t(s), -1});
      }
      for (uint32_t k = A.states[s].calls_begin; k < A.states[s].calls_end; ++k) {
        pred[A.calls[k].ret].push_back({int32_t(s), int32_t(A.calls[k].rule)});
      }
    }
    std::vector<uint32_t> rule_min(R, kInf);
    A.dist.assign(m, kInf);
    for (size_t iter = 0; iter <= R + 1; ++iter) {
      std::fill(A.dist.begin(), A.dist.end(), kInf);
      using Item = std::pair<uint32_t, int32_t>;
      std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
      for (size_t s = 0; s < m; ++s) {
        if (A.final(int32_t(s))) {
          A.dist[s] = 0;
          pq.push({0, int32_t(s)});
        }
      }
      while (!pq.empty()) {
        auto [d, t] = pq.top();
        pq.pop();
        if (d != A.dist[t]) continue;
        for (auto [s, callee] : pred[t]) {
          uint32_t w = callee < 0 ? 1 : rule_min[callee];
          if (w >= kInf) continue;
          uint32_t nd = d + w;
          if (nd < A.dist[s]) {
            A.dist[s] = nd;
            pq.push({nd, s});
          }
        }
      }
      bool changed = false;
      for (uint32_t r = 0; r < R; ++r) {
        uint32_t v = A.dist[A.rules[r].start];
        Automaton::RuleInfo& info = A.rules[r];
        if (info.counted && v < kInf) {
          // The head's distance skips the loop; a counted rule needs loop_min items first.
          const int32_t head = info.start;
          uint32_t item = kInf;
          for (uint32_t c = 0; c < C; ++c) {
            int32_t t = A.next[size_t(head) * C + c];
            if (t < 0 || (A.states[size_t(t)].flags & Automaton::kLoopTail) || A.dist[size_t(t)] >= kInf)
              continue;
            uint32_t len = 1 + (t == head ? 0 : A.dist[size_t(t)] - A.dist[size_t(head)]);
            if (len < item) {
              item = len;
              info.head_item_byte = int16_t(A.class_first_byte[c]);
            }
          }
          info.item_min_len = item;
          if (info.loop_min > 0)
            v = item >= kInf ? kInf : uint32_t(std::min<uint64_t>(kInf, v + uint64_t(item) * info.loop_min));
        }
        if (v != rule_min[r]) {
          rule_min[r] = v;
          changed = true;
        }
      }
      if (!changed) break;
    }
    for (uint32_t r = 0; r < R; ++r) A.rules[r].min_len = rule_min[r];
    A.best_byte.assign(m, -1);
    for (size_t s = 0; s < m; ++s) {
      if (A.final(int32_t(s))) continue;
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = A.next[s * C + c];
        if (t >= 0 && A.dist[t] + 1 == A.dist[s]) {
          A.best_byte[s] = int16_t(A.class_first_byte[c]);
          break;
        }
      }
    }
  }
}

}  // namespace tailor::grammar
