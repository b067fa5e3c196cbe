#include "grammar/automaton.h"

#include <algorithm>
#include <unordered_map>

#include "grammar/automaton_passes.h"
#include "grammar/utf8.h"

namespace tailor::grammar {

namespace {

constexpr uint64_t kSizeCap = uint64_t(1) << 40;

uint64_t sat_add(uint64_t a, uint64_t b) {
  return std::min(a + b, kSizeCap);
}
uint64_t sat_mul(uint64_t a, uint64_t b) {
  return (b != 0 && a > kSizeCap / b) ? kSizeCap : std::min(a * b, kSizeCap);
}

void collect_refs(const Expr& e, std::vector<uint32_t>& out) {
  if (e.kind == ExprKind::rule_ref) out.push_back(e.rule);
  for (const Expr& it : e.items) collect_refs(it, out);
}

// Which rules are recursive, how often each is referenced, and which get inlined.
struct Analysis {
  std::vector<bool> reachable, recursive, inlined, wide, counted;
  std::vector<uint32_t> refcount;
  std::vector<uint64_t> size;  // NFA size estimate with inlining applied
  std::vector<bool> done;
};

void tarjan(const std::vector<std::vector<uint32_t>>& adj, std::vector<bool>& recursive) {
  size_t n = adj.size();
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<uint32_t> stack;
  int counter = 0;
  // Iterative DFS: deep grammars must not overflow the C++ stack.
  struct Frame {
    uint32_t v;
    size_t edge;
  };
  for (uint32_t s = 0; s < n; ++s) {
    if (index[s] >= 0) continue;
    std::vector<Frame> dfs{{s, 0}};
    index[s] = low[s] = counter++;
    stack.push_back(s);
    on_stack[s] = true;
    while (!dfs.empty()) {
      Frame& f = dfs.back();
      if (f.edge < adj[f.v].size()) {
        uint32_t w = adj[f.v][f.edge++];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = true;
          dfs.push_back({w, 0});
        } else if (on_stack[w]) {
          low[f.v] = std::min(low[f.v], index[w]);
        }
        continue;
      }
      uint32_t v = f.v;
      dfs.pop_back();
      if (!dfs.empty()) low[dfs.back().v] = std::min(low[dfs.back().v], low[v]);
      if (low[v] == index[v]) {
        std::vector<uint32_t> comp;
        while (true) {
          uint32_t w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          comp.push_back(w);
          if (w == v) break;
        }
        bool self = std::find(adj[v].begin(), adj[v].end(), v) != adj[v].end();
        if (comp.size() > 1 || self) {
          for (uint32_t w : comp) recursive[w] = true;
        }
      }
    }
  }
}

uint64_t estimate(const Expr& e, const Grammar& g, Analysis& a, bool* wide);

void decide(uint32_t r, const Grammar& g, Analysis& a) {
  if (a.done[r]) return;
  a.done[r] = true;  // recursive rules are never inlined, so a cycle cannot re-enter here through inlining
  bool wide = false;
  uint64_t size = estimate(g.rules[r].body, g, a, &wide);
  a.size[r] = size;
  a.wide[r] = wide;
  const Rule& rule = g.rules[r];
  bool can = !a.recursive[r] && r != g.root && rule.hint != InlineHint::call && !a.counted[r];
  a.inlined[r] = can && (rule.hint == InlineHint::always || a.refcount[r] <= 1 || (size <= 256 && !wide));
}

uint64_t estimate(const Expr& e, const Grammar& g, Analysis& a, bool* wide) {
  switch (e.kind) {
    case ExprKind::empty:
      return 1;
    case ExprKind::literal:
      return e.text.size() + 1;
    case ExprKind::char_set:
      if (e.chars.count() > 64) *wide = true;
      return e.chars.ranges().size() * 4 + 2;
    case ExprKind::byte_set: {
      uint64_t n = 0;
      for (CodeRange r : e.bytes) n += r.hi - r.lo + 1;
      if (n > 64) *wide = true;
      return 2;
    }
    case ExprKind::seq:
    case ExprKind::alt: {
      uint64_t n = 1;
      for (const Expr& it : e.items) n = sat_add(n, estimate(it, g, a, wide));
      return n;
    }
    case ExprKind::repeat: {
      uint64_t copies = e.max == kUnbounded ? uint64_t(e.min) + 1 : e.max;
      return sat_add(2, sat_mul(estimate(e.items[0], g, a, wide), std::max<uint64_t>(copies, 1)));
    }
    case ExprKind::rule_ref:
      decide(e.rule, g, a);
      if (a.inlined[e.rule]) {
        *wide = *wide || a.wide[e.rule];
        return a.size[e.rule];
      }
      return 2;
  }
  return 1;
}

bool has_ref(const Expr& e) {
  if (e.kind == ExprKind::rule_ref) return true;
  for (const Expr& it : e.items) {
    if (has_ref(it)) return true;
  }
  return false;
}

// `X{min,max} Y` with a large count and no calls: a candidate counted-loop rule (see Automaton::RuleInfo).
bool counted_shape(const Expr& body) {
  if (body.kind != ExprKind::seq || body.items.size() != 2) return false;
  const Expr& r = body.items[0];
  const Expr& y = body.items[1];
  if (r.kind != ExprKind::repeat || y.kind == ExprKind::empty) return false;
  bool big = r.max == kUnbounded ? r.min >= 4 : r.max >= 4;
  return big && !has_ref(r.items[0]) && !has_ref(y);
}

Analysis analyze(const Grammar& g) {
  size_t n = g.rules.size();
  Analysis a;
  a.counted.assign(n, false);
  for (size_t r = 0; r < n; ++r) a.counted[r] = counted_shape(g.rules[r].body);
  a.reachable.assign(n, false);
  a.recursive.assign(n, false);
  a.inlined.assign(n, false);
  a.wide.assign(n, false);
  a.done.assign(n, false);
  a.refcount.assign(n, 0);
  a.size.assign(n, 0);
  std::vector<std::vector<uint32_t>> adj(n);
  for (size_t r = 0; r < n; ++r) collect_refs(g.rules[r].body, adj[r]);
  std::vector<uint32_t> work{g.root};
  a.reachable[g.root] = true;
  while (!work.empty()) {
    uint32_t r = work.back();
    work.pop_back();
    for (uint32_t c : adj[r]) {
      if (!a.reachable[c]) {
        a.reachable[c] = true;
        work.push_back(c);
      }
    }
  }
  for (size_t r = 0; r < n; ++r) {
    if (!a.reachable[r]) continue;
    for (uint32_t c : adj[r]) ++a.refcount[c];
  }
  tarjan(adj, a.recursive);
  for (size_t r = 0; r < n; ++r) {
    if (a.reachable[r]) decide(uint32_t(r), g, a);
  }
  return a;
}

// ---- NFA (Thompson construction over byte ranges, with call edges) ----

struct NfaEdge {
  int32_t from, to;
  enum Kind : uint8_t { eps, byte, call } kind;
  uint8_t lo = 0, hi = 0;
  uint32_t rule = 0;  // call: automaton rule index
};

struct Nfa {
  int32_t n_states = 2;  // 0 = start, 1 = accept
  std::vector<NfaEdge> edges;
};

class NfaBuilder {
 public:
  NfaBuilder(const Grammar& g, const Analysis& a, const AutomatonLimits& lim,
             std::vector<uint32_t>& arule_of_rule, std::vector<uint32_t>& rule_of_arule,
             uint64_t& total_states)
      : g_(g),
        a_(a),
        lim_(lim),
        arule_of_rule_(arule_of_rule),
        rule_of_arule_(rule_of_arule),
        total_(total_states) {}

  Status build(const Expr& e, int32_t from, int32_t to, Nfa& nfa, int depth) {
    if (depth > 10000) return invalid_argument("grammar nests too deeply (over 10000 levels after inlining)");
    switch (e.kind) {
      case ExprKind::empty:
        add(nfa, from, to, NfaEdge::eps);
        return {};
      case ExprKind::literal: {
        int32_t cur = from;
        for (size_t i = 0; i < e.text.size(); ++i) {
          int32_t nxt = i + 1 == e.text.size() ? to : new_state(nfa);
          add(nfa, cur, nxt, NfaEdge::byte, uint8_t(e.text[i]), uint8_t(e.text[i]));
          cur = nxt;
        }
        return {};
      }
      case ExprKind::char_set: {
        seqs_.clear();
        for (CodeRange r : e.chars.ranges()) utf8_sequences(r.lo, r.hi, seqs_);
        std::vector<Utf8Seq> local = seqs_;
        for (const Utf8Seq& s : local) {
          int32_t cur = from;
          for (int i = 0; i < s.n; ++i) {
            int32_t nxt = i + 1 == s.n ? to : new_state(nfa);
            add(nfa, cur, nxt, NfaEdge::byte, s.lo[i], s.hi[i]);
            cur = nxt;
          }
        }
        return {};
      }
      case ExprKind::byte_set:
        for (CodeRange r : e.bytes) add(nfa, from, to, NfaEdge::byte, uint8_t(r.lo), uint8_t(r.hi));
        return {};
      case ExprKind::seq: {
        int32_t cur = from;
        for (size_t i = 0; i < e.items.size(); ++i) {
          int32_t nxt = i + 1 == e.items.size() ? to : new_state(nfa);
          TAILOR_RETURN_IF_ERROR(build(e.items[i], cur, nxt, nfa, depth + 1));
          cur = nxt;
        }
        return {};
      }
      case ExprKind::alt:
        for (const Expr& it : e.items) TAILOR_RETURN_IF_ERROR(build(it, from, to, nfa, depth + 1));
        return {};
      case ExprKind::repeat:
        return build_repeat(e, from, to, nfa, depth);
      case ExprKind::rule_ref: {
        if (a_.inlined[e.rule]) return build(g_.rules[e.rule].body, from, to, nfa, depth + 1);
        uint32_t ar = arule(e.rule);
        NfaEdge edge{from, to, NfaEdge::call};
        edge.rule = ar;
        nfa.edges.push_back(edge);
        return {};
      }
    }
    return {};
  }

  uint32_t arule(uint32_t r) {
    if (arule_of_rule_[r] == UINT32_MAX) {
      arule_of_rule_[r] = uint32_t(rule_of_arule_.size());
      rule_of_arule_.push_back(r);
    }
    return arule_of_rule_[r];
  }

  const Status& overflow() const { return overflow_; }

 private:
  // New state, or a too-large error recorded in overflow_ (the caller checks it after building).
  int32_t new_state(Nfa& nfa) {
    if (++total_ > lim_.max_nfa_states) {
      if (overflow_.ok()) {
        overflow_ =
            invalid_argument(cat("grammar too large: more than ", lim_.max_nfa_states,
                                 " automaton states after expanding repetitions and inlining rules "
                                 "(lower the repetition counts such as {m,n} or maxLength/maxItems)"));
      }
      return 1;
    }
    return nfa.n_states++;
  }
#define new_state(nfa) new_state(nfa)

  void add(Nfa& nfa, int32_t from, int32_t to, NfaEdge::Kind k, uint8_t lo = 0, uint8_t hi = 0) {
    NfaEdge e{from, to, k};
    e.lo = lo;
    e.hi = hi;
    nfa.edges.push_back(e);
  }

  Status build_repeat(const Expr& e, int32_t from, int32_t to, Nfa& nfa, int depth) {
    const Expr& item = e.items[0];
    int32_t cur = from;
    for (uint32_t i = 0; i < e.min; ++i) {
      if (!overflow_.ok()) return overflow_;
      bool last = i + 1 == e.min && e.max == e.min;
      int32_t nxt = last ? to : new_state(nfa);
      TAILOR_RETURN_IF_ERROR(build(item, cur, nxt, nfa, depth + 1));
      cur = nxt;
    }
    if (e.max == kUnbounded) {
      // Fresh loop state so that nothing outside can re-enter the loop.
      int32_t loop = new_state(nfa), back = new_state(nfa);
      add(nfa, cur, loop, NfaEdge::eps);
      TAILOR_RETURN_IF_ERROR(build(item, loop, back, nfa, depth + 1));
      add(nfa, back, loop, NfaEdge::eps);
      add(nfa, loop, to, NfaEdge::eps);
    } else if (e.max > e.min) {
      for (uint32_t i = e.min; i < e.max; ++i) {
        if (!overflow_.ok()) return overflow_;
        add(nfa, cur, to, NfaEdge::eps);
        int32_t nxt = i + 1 == e.max ? to : new_state(nfa);
        TAILOR_RETURN_IF_ERROR(build(item, cur, nxt, nfa, depth + 1));
        cur = nxt;
      }
    } else if (e.min == 0) {
      add(nfa, from, to, NfaEdge::eps);
    }
    return overflow_;
  }

  const Grammar& g_;
  const Analysis& a_;
  const AutomatonLimits& lim_;
  std::vector<uint32_t>& arule_of_rule_;
  std::vector<uint32_t>& rule_of_arule_;
  uint64_t& total_;
  std::vector<Utf8Seq> seqs_;
  Status overflow_;
};

// ---- subset construction ----

struct LocalDfa {
  std::vector<int32_t> next;  // [n * n_classes]
  std::vector<uint8_t> final;
  std::vector<std::vector<std::pair<uint32_t, int32_t>>> calls;  // (callee arule, target)
  size_t size() const { return final.size(); }
};

struct VecHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ uint32_t(x)) * 1099511628211ull;
    return size_t(h);
  }
};

// x_lo..x_hi: for a counted-loop rule, the NFA states of the loop item; `region` then gets per DFA state
// 0 = head (the start), 1 = inside the item, 2 = terminator, 3 = mixed (the rule is not a valid counted
// loop).
Status determinize(const Nfa& nfa, const std::array<uint8_t, 256>& byte_class, uint32_t n_classes,
                   uint64_t& dfa_total, const AutomatonLimits& lim, LocalDfa& out, int32_t x_lo = -1,
                   int32_t x_hi = -1, std::vector<uint8_t>* region = nullptr) {
  int32_t n = nfa.n_states;
  // CSR adjacency, epsilon edges apart from the others: the closure walks only epsilon edges, and a state
  // with a large character class (\p{L}: about a thousand byte-range edges) must not be rescanned by every
  // closure that passes through it.
  auto csr = [&](bool eps, std::vector<uint32_t>& off, std::vector<uint32_t>& idx) {
    off.assign(size_t(n) + 1, 0);
    for (const NfaEdge& e : nfa.edges) {
      if ((e.kind == NfaEdge::eps) == eps) ++off[size_t(e.from) + 1];
    }
    for (int32_t i = 0; i < n; ++i) off[i + 1] += off[i];
    idx.resize(off[size_t(n)]);
    std::vector<uint32_t> fill(off.begin(), off.end() - 1);
    for (uint32_t i = 0; i < nfa.edges.size(); ++i) {
      if ((nfa.edges[i].kind == NfaEdge::eps) == eps) idx[fill[nfa.edges[i].from]++] = i;
    }
  };
  std::vector<uint32_t> off, idx, eps_off, eps_to;
  csr(false, off, idx);
  csr(true, eps_off, eps_to);
  for (uint32_t& k : eps_to) k = uint32_t(nfa.edges[k].to);
  std::vector<uint8_t> important(n, 0);
  important[1] = 1;
  for (int32_t i = 0; i < n; ++i) {
    if (off[i + 1] > off[i]) important[i] = 1;
  }

  std::vector<uint32_t> stamp(n, 0);
  uint32_t cur_stamp = 0;
  std::vector<int32_t> stack;
  uint64_t work = 0;  // against lim.max_determinize_work
  auto closure = [&](const std::vector<int32_t>& seeds) {
    ++cur_stamp;
    std::vector<int32_t> key;
    stack.assign(seeds.begin(), seeds.end());
    for (int32_t s : seeds) stamp[s] = cur_stamp;
    while (!stack.empty()) {
      int32_t s = stack.back();
      stack.pop_back();
      ++work;
      if (important[s]) key.push_back(s);
      for (uint32_t k = eps_off[s]; k < eps_off[s + 1]; ++k) {
        const int32_t t = int32_t(eps_to[k]);
        if (stamp[t] != cur_stamp) {
          stamp[t] = cur_stamp;
          stack.push_back(t);
        }
      }
    }
    std::sort(key.begin(), key.end());
    work += key.size();  // the sort, and hashing it in intern()
    return key;
  };

  std::unordered_map<std::vector<int32_t>, int32_t, VecHash> ids;
  std::vector<std::vector<int32_t>> sets;
  auto intern = [&](std::vector<int32_t> key) -> int32_t {
    auto it = ids.find(key);
    if (it != ids.end()) return it->second;
    int32_t id = int32_t(sets.size());
    ids.emplace(key, id);
    sets.push_back(std::move(key));
    return id;
  };
  intern(closure({0}));
  std::vector<std::vector<int32_t>> buckets(n_classes);
  std::vector<std::pair<uint32_t, int32_t>> call_targets;
  for (size_t i = 0; i < sets.size(); ++i) {
    if (++dfa_total > lim.max_dfa_states) {
      return invalid_argument(
          cat("grammar too complex: more than ", lim.max_dfa_states,
              " DFA states (a pattern such as (a|b)*a(a|b){20} blows up when determinized; "
              "simplify the pattern or its repetition counts)"));
    }
    work += sets[i].size();
    if (work > lim.max_determinize_work) {
      return invalid_argument(
          cat("grammar too complex: determinizing one rule took more than ", lim.max_determinize_work,
              " steps (a repetition of a group that can match nothing, such as (a|b|){25,}, multiplies the "
              "automaton's states; simplify the pattern or its repetition counts)"));
    }
    for (auto& b : buckets) b.clear();
    call_targets.clear();
    bool is_final = false;
    for (int32_t s : sets[i]) {
      if (s == 1) is_final = true;
      for (uint32_t k = off[s]; k < off[s + 1]; ++k) {
        const NfaEdge& e = nfa.edges[idx[k]];
        if (e.kind == NfaEdge::byte) {
          work += byte_class[e.hi] - byte_class[e.lo] + 1;
          for (uint32_t c = byte_class[e.lo]; c <= byte_class[e.hi]; ++c) buckets[c].push_back(e.to);
        } else if (e.kind == NfaEdge::call) {
          call_targets.push_back({e.rule, e.to});
        }
      }
    }
    out.next.resize(sets.size() * n_classes, -1);
    for (uint32_t c = 0; c < n_classes; ++c) {
      if (buckets[c].empty()) continue;
      int32_t t = intern(closure(buckets[c]));
      out.next.resize(sets.size() * n_classes, -1);
      out.next[i * n_classes + c] = t;
    }
    std::sort(call_targets.begin(), call_targets.end());
    std::vector<std::pair<uint32_t, int32_t>> calls;
    for (size_t k = 0; k < call_targets.size();) {
      size_t j = k;
      std::vector<int32_t> seeds;
      while (j < call_targets.size() && call_targets[j].first == call_targets[k].first) {
        seeds.push_back(call_targets[j].second);
        ++j;
      }
      int32_t t = intern(closure(seeds));
      calls.push_back({call_targets[k].first, t});
      k = j;
    }
    out.next.resize(sets.size() * n_classes, -1);
    out.final.push_back(is_final);
    out.calls.push_back(std::move(calls));
  }
  if (region) {
    region->assign(sets.size(), 0);
    for (size_t i = 1; i < sets.size(); ++i) {
      bool has_x = false, has_other = false;
      for (int32_t s : sets[i]) (s >= x_lo && s < x_hi ? has_x : has_other) = true;
      (*region)[i] = has_x && has_other ? 3 : has_x ? 1 : 2;
    }
  }
  return {};
}

// Whether a counted-loop candidate determinized into the expected shape: the head is not final and mixes
// nothing else, item and terminator states never mix, the terminator never leads back into the loop.
bool valid_counted_dfa(const LocalDfa& d, const std::vector<uint8_t>& region, uint32_t C) {
  if (d.size() == 0 || d.final[0]) return false;
  for (size_t s = 0; s < d.size(); ++s) {
    if (region[s] == 3 || !d.calls[s].empty()) return false;
    if (region[s] == 1 && d.final[s]) return false;
    for (uint32_t c = 0; c < C; ++c) {
      int32_t t = d.next[s * C + c];
      if (t >= 0 && region[s] == 2 && region[size_t(t)] != 2) return false;
    }
  }
  return true;
}

}  // namespace

Result<Automaton> build_automaton(const Grammar& g, const AutomatonLimits& limits) {
  TAILOR_RETURN_IF_ERROR(g.validate());
  Analysis an = analyze(g);

  // 1. NFAs for the root and every rule that stays a call.
  std::vector<uint32_t> arule_of_rule(g.rules.size(), UINT32_MAX), rule_of_arule;
  uint64_t nfa_total = 0;
  NfaBuilder builder(g, an, limits, arule_of_rule, rule_of_arule, nfa_total);
  builder.arule(g.root);
  std::vector<Nfa> nfas;
  std::vector<std::pair<int32_t, int32_t>> x_range;  // per automaton rule; (-1, -1) when not counted
  for (size_t i = 0; i < rule_of_arule.size(); ++i) {
    Nfa nfa;
    const Expr& body = g.rules[rule_of_arule[i]].body;
    Status st;
    std::pair<int32_t, int32_t> xr{-1, -1};
    if (an.counted[rule_of_arule[i]]) {
      // X* from the start to `mid`, then Y: the counter enforces the bounds at run time.
      int32_t mid = nfa.n_states++;
      xr.first = nfa.n_states;
      st = builder.build(star(body.items[0].items[0]), 0, mid, nfa, 0);
      xr.second = nfa.n_states;
      if (st.ok()) st = builder.build(body.items[1], mid, 1, nfa, 0);
    } else {
      st = builder.build(body, 0, 1, nfa, 0);
    }
    if (!builder.overflow().ok()) return builder.overflow();
    TAILOR_RETURN_IF_ERROR(st);
    nfas.push_back(std::move(nfa));
    x_range.push_back(xr);
  }

  // 2. Byte classes: maximal byte intervals that no edge splits.
  Automaton A;
  std::array<bool, 257> boundary{};
  boundary[0] = true;
  for (const Nfa& nfa : nfas) {
    for (const NfaEdge& e : nfa.edges) {
      if (e.kind != NfaEdge::byte) continue;
      boundary[e.lo] = true;
      boundary[size_t(e.hi) + 1] = true;
    }
  }
  uint32_t cls = 0;
  for (int b = 0; b < 256; ++b) {
    if (b > 0 && boundary[b]) ++cls;
    A.byte_class[b] = uint8_t(cls);
    if (A.class_first_byte.size() <= cls) A.class_first_byte.push_back(uint8_t(b));
  }
  A.n_classes = cls + 1;
  const uint32_t C = A.n_classes;

  // 3. Determinize each rule and lay the DFAs out in one state space.
  uint64_t dfa_total = 0;
  std::vector<LocalDfa> dfas(nfas.size());
  std::vector<std::vector<uint8_t>> regions(nfas.size());
  std::vector<uint8_t> counted_rule(nfas.size(), 0);
  for (size_t r = 0; r < nfas.size(); ++r) {
    if (x_range[r].first >= 0) {
      TAILOR_RETURN_IF_ERROR(determinize(nfas[r], A.byte_class, C, dfa_total, limits, dfas[r],
                                         x_range[r].first, x_range[r].second, &regions[r]));
      if (valid_counted_dfa(dfas[r], regions[r], C)) {
        counted_rule[r] = 1;
      } else {
        // Not a clean loop (e.g. the item is not prefix-free): expand the repetition instead.
        dfas[r] = LocalDfa{};
        regions[r].clear();
        Nfa plain;
        Status st = builder.build(g.rules[rule_of_arule[r]].body, 0, 1, plain, 0);
        if (!builder.overflow().ok()) return builder.overflow();
        TAILOR_RETURN_IF_ERROR(st);
        // The plain NFA may use byte ranges the loop NFA split differently; classes stay valid because the
        // loop NFA had the same edges.
        TAILOR_RETURN_IF_ERROR(determinize(plain, A.byte_class, C, dfa_total, limits, dfas[r]));
      }
    } else {
      TAILOR_RETURN_IF_ERROR(determinize(nfas[r], A.byte_class, C, dfa_total, limits, dfas[r]));
    }
    nfas[r] = Nfa{};  // free as we go
  }
  std::vector<int32_t> base(dfas.size() + 1, 0);
  for (size_t r = 0; r < dfas.size(); ++r) base[r + 1] = base[r] + int32_t(dfas[r].size());
  size_t n = size_t(base.back());
  std::vector<int32_t> next(n * C, -1);
  std::vector<uint8_t> fin(n, 0), reg(n, 0);
  std::vector<uint32_t> rule_of(n);
  std::vector<std::vector<Automaton::Call>> calls(n);
  for (size_t r = 0; r < dfas.size(); ++r) {
    for (size_t s = 0; s < dfas[r].size(); ++s) {
      size_t gs = size_t(base[r]) + s;
      rule_of[gs] = uint32_t(r);
      fin[gs] = dfas[r].final[s];
      reg[gs] = regions[r].empty() ? 0 : regions[r][s];
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = dfas[r].next[s * C + c];
        next[gs * C + c] = t < 0 ? -1 : base[r] + t;
      }
      for (auto [callee, t] : dfas[r].calls[s]) calls[gs].push_back({callee, base[r] + t});
    }
  }
  dfas.clear();
  size_t n_rules = rule_of_arule.size();
  auto start_of = [&](uint32_t r) { return base[r]; };

  // 4. Productive rules and live states (can still reach a final state), computed together.
  std::vector<uint8_t> live(n, 0), prod(n_rules, 0);
  {
    std::vector<std::vector<int32_t>> byte_pred(n);
    std::vector<std::vector<std::pair<int32_t, int32_t>>> call_pred(n);  // ret -> (caller state, callee)
    std::vector<std::vector<std::pair<int32_t, int32_t>>> by_callee(n_rules);  // callee -> (caller, ret)
    for (size_t s = 0; s < n; ++s) {
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = next[s * C + c];
        if (t >= 0 && (byte_pred[t].empty() || byte_pred[t].back() != int32_t(s)))
          byte_pred[t].push_back(int32_t(s));
      }
      for (const Automaton::Call& k : calls[s]) {
        call_pred[k.ret].push_back({int32_t(s), int32_t(k.rule)});
        by_callee[k.rule].push_back({int32_t(s), k.ret});
      }
    }
    std::vector<int32_t> work;
    auto mark = [&](int32_t s) {
      if (!live[s]) {
        live[s] = 1;
        work.push_back(s);
      }
    };
    for (size_t s = 0; s < n; ++s) {
      if (fin[s]) mark(int32_t(s));
    }
    while (!work.empty()) {
      int32_t t = work.back();
      work.pop_back();
      for (int32_t p : byte_pred[t]) mark(p);
      for (auto [caller, callee] : call_pred[t]) {
        if (prod[callee]) mark(caller);
      }
      uint32_t r = rule_of[t];
      if (t == start_of(r) && !prod[r]) {
        prod[r] = 1;
        for (auto [caller, ret] : by_callee[r]) {
          if (live[ret]) mark(caller);
        }
      }
    }
  }
  if (!prod[0]) {
    return invalid_argument(cat("grammar: rule \"", g.rules[g.root].name,
                                "\" matches no string at all (an empty character class, or rules that only "
                                "refer to each other without a way to end)"));
  }

  // 5. Keep live states reachable from the root; renumber.
  std::vector<int32_t> remap(n, -1);
  std::vector<int32_t> order;
  {
    std::vector<int32_t> work{start_of(0)};
    remap[start_of(0)] = 0;
    order.push_back(start_of(0));
    std::vector<uint8_t> rule_seen(n_rules, 0);
    rule_seen[0] = 1;
    auto visit = [&](int32_t s) {
      if (s >= 0 && live[s] && remap[s] < 0) {
        remap[s] = int32_t(order.size());
        order.push_back(s);
        work.push_back(s);
      }
    };
    while (!work.empty()) {
      int32_t s = work.back();
      work.pop_back();
      for (uint32_t c = 0; c < C; ++c) visit(next[size_t(s) * C + c]);
      for (const Automaton::Call& k : calls[s]) {
        if (!prod[k.rule] || !live[k.ret]) continue;
        visit(k.ret);
        if (!rule_seen[k.rule]) {
          rule_seen[k.rule] = 1;
          visit(start_of(k.rule));
        }
      }
    }
  }
  // Rules renumbered in order of first appearance; the root stays 0.
  std::vector<int32_t> rule_remap(n_rules, -1);
  for (int32_t s : order) {
    uint32_t r = rule_of[s];
    if (rule_remap[r] < 0) {
      rule_remap[r] = int32_t(A.rules.size());
      Automaton::RuleInfo info;
      info.name = g.rules[rule_of_arule[r]].name;
      if (counted_rule[r]) {
        const Expr& rep_expr = g.rules[rule_of_arule[r]].body.items[0];
        info.counted = true;
        info.loop_min = rep_expr.min;
        info.loop_max = rep_expr.max;
      }
      A.rules.push_back(info);
    }
  }
  for (size_t r = 0; r < n_rules; ++r) {
    if (rule_remap[r] >= 0) A.rules[rule_remap[r]].start = remap[start_of(uint32_t(r))];
  }
  size_t m = order.size();
  A.states.resize(m);
  A.next.assign(m * C, -1);
  for (size_t i = 0; i < m; ++i) {
    int32_t s = order[i];
    Automaton::State& st = A.states[i];
    st.rule = uint32_t(rule_remap[rule_of[s]]);
    st.flags = fin[s] ? Automaton::kFinal : 0;
    if (counted_rule[rule_of[s]]) {
      st.flags |= Automaton::kCounted;
      if (reg[s] == 2) st.flags |= Automaton::kLoopTail;
    }
    for (uint32_t c = 0; c < C; ++c) {
      int32_t t = next[size_t(s) * C + c];
      if (t >= 0 && remap[t] >= 0) {
        A.next[i * C + c] = remap[t];
        st.flags |= Automaton::kHasBytes;
      }
    }
    st.calls_begin = uint32_t(A.calls.size());
    for (const Automaton::Call& k : calls[s]) {
      if (!prod[k.rule] || remap[k.ret] < 0) continue;
      A.calls.push_back({uint32_t(rule_remap[k.rule]), remap[k.ret]});
    }
    st.calls_end = uint32_t(A.calls.size());
    if ((st.flags & Automaton::kFinal) || st.calls_end > st.calls_begin) st.flags |= Automaton::kNeedsClosure;
  }

  // 6. Left recursion would make the pushdown closure infinite.
  TAILOR_RETURN_IF_ERROR(check_left_recursion(A));
  // 7-8. Byte sets and shortest completions.
  compute_byte_sets_and_distances(A);
  return A;
}

}  // namespace tailor::grammar
