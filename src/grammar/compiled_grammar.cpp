#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <unordered_map>

#include "core/thread_pool.h"
#include "grammar/pda.h"

namespace tailor::grammar {

namespace {

constexpr size_t kMaxCachedReturnIds = size_t(32) << 20;  // ~128 MB of ids, then the cache starts over

// A pool of its own: compiling in a request thread must not queue behind (or stall) the engine's matmuls on
// the global pool.
ThreadPool& compile_pool() {
  static ThreadPool pool(std::min(4, std::max(1, hardware_threads())));
  return pool;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct VecHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ uint32_t(x)) * 1099511628211ull;
    return size_t(h ^ (h >> 29));
  }
};

// Groups states that behave alike on every byte string of up to `depth` bytes: Moore's partition refinement
// cut at `depth` rounds. No token (at most `depth` bytes) can tell such states apart, so they share one
// classification; this is what keeps counted repetitions (maxLength 500) from costing one trie walk per
// count. Incremental: a round only re-examines predecessors of states that moved in the previous round, so
// long counter chains cost O(states x classes) overall instead of per round.
std::vector<int32_t> refine_states(const Automaton& A, uint32_t depth) {
  const size_t n = A.states.size();
  const uint32_t C = A.n_classes;
  std::vector<int32_t> cls(n);
  {
    std::unordered_map<std::vector<int32_t>, int32_t, VecHash> ids;
    std::vector<int32_t> sig;
    for (size_t s = 0; s < n; ++s) {
      const Automaton::State& st = A.states[s];
      sig.assign({int32_t(st.flags & (Automaton::kFinal | Automaton::kHasBytes | Automaton::kCounted |
                                      Automaton::kLoopTail))});
      if (st.flags & Automaton::kCounted) {
        // Counted classifications are relative to the rule's head and bounds.
        const Automaton::RuleInfo& r = A.rules[st.rule];
        sig.push_back(int32_t(r.start == int32_t(s)));
        sig.push_back(int32_t(r.loop_min));
        sig.push_back(int32_t(r.loop_max));
      }
      for (uint32_t k = st.calls_begin; k < st.calls_end; ++k) {
        sig.push_back(int32_t(A.calls[k].rule));
        sig.push_back(A.calls[k].ret);
      }
      cls[s] = ids.try_emplace(sig, int32_t(ids.size())).first->second;
    }
  }
  size_t n_cls = size_t(*std::max_element(cls.begin(), cls.end())) + 1;
  std::vector<uint32_t> size(n_cls, 0);
  for (int32_t c : cls) ++size[size_t(c)];
  std::vector<std::vector<int32_t>> succ_sig(n_cls);  // successor classes the block's members share
  // Predecessors by byte moves (CSR).
  std::vector<uint32_t> poff(n + 1, 0);
  std::vector<int32_t> preds;
  {
    std::vector<std::vector<int32_t>> p(n);
    for (size_t s = 0; s < n; ++s) {
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = A.next[s * C + c];
        if (t >= 0 && (p[size_t(t)].empty() || p[size_t(t)].back() != int32_t(s)))
          p[size_t(t)].push_back(int32_t(s));
      }
    }
    for (size_t s = 0; s < n; ++s) poff[s + 1] = poff[s] + uint32_t(p[s].size());
    preds.reserve(poff[n]);
    for (auto& v : p) preds.insert(preds.end(), v.begin(), v.end());
  }
  std::vector<int32_t> dirty(n);
  for (size_t s = 0; s < n; ++s) dirty[s] = int32_t(s);
  std::vector<uint32_t> dcount(n_cls, 0), stamp(n, 0);
  std::vector<uint8_t> claimed;
  std::vector<int32_t> sv, moved;
  for (uint32_t round = 1; round <= depth && !dirty.empty(); ++round) {
    dcount.assign(n_cls, 0);
    for (int32_t q : dirty) ++dcount[size_t(cls[size_t(q)])];
    claimed.assign(n_cls, 0);
    // (old block, successor classes) -> new block.
    std::unordered_map<std::vector<int32_t>, int32_t, VecHash> groups;
    std::vector<int32_t> new_cls(dirty.size());
    for (size_t k = 0; k < dirty.size(); ++k) {
      size_t q = size_t(dirty[k]);
      int32_t X = cls[q];
      sv.resize(C);
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = A.next[q * C + c];
        sv[c] = t < 0 ? -1 : cls[size_t(t)];
      }
      if (size[size_t(X)] > dcount[size_t(X)] && sv == succ_sig[size_t(X)]) {
        new_cls[k] = X;  // agrees with the members that did not need re-examining
        continue;
      }
      sv.push_back(X);
      auto [it, fresh] = groups.try_emplace(sv, -1);
      if (fresh) {
        if (size[size_t(X)] == dcount[size_t(X)] && !claimed[size_t(X)]) {
          it->second = X;  // every member is being re-examined: the first group keeps the id
          claimed[size_t(X)] = 1;
        } else {
          it->second = int32_t(n_cls++);
          succ_sig.emplace_back();
          size.push_back(0);
          claimed.push_back(1);
        }
        sv.pop_back();
        succ_sig[size_t(it->second)] = sv;
      }
      int32_t found = it->second;
      new_cls[k] = found;
    }
    moved.clear();
    for (size_t k = 0; k < dirty.size(); ++k) {
      size_t q = size_t(dirty[k]);
      if (new_cls[k] != cls[q]) {
        --size[size_t(cls[q])];
        ++size[size_t(new_cls[k])];
        cls[q] = new_cls[k];
        moved.push_back(int32_t(q));
      }
    }
    dirty.clear();
    for (int32_t t : moved) {
      for (uint32_t j = poff[size_t(t)]; j < poff[size_t(t) + 1]; ++j) {
        int32_t p = preds[j];
        if (stamp[size_t(p)] != round) {
          stamp[size_t(p)] = round;
          dirty.push_back(p);
        }
      }
    }
  }
  return cls;
}

}  // namespace

std::shared_ptr<const std::vector<int32_t>> CompiledGrammar::find_returns(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = returns_.find(key);
  return it == returns_.end() ? nullptr : it->second;
}

void CompiledGrammar::store_returns(const std::string& key,
                                    std::shared_ptr<const std::vector<int32_t>> ids) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (returns_ids_ + ids->size() > kMaxCachedReturnIds) {
    returns_.clear();
    returns_ids_ = 0;
  }
  returns_ids_ += ids->size();
  returns_.emplace(key, std::move(ids));
}

size_t CompiledGrammar::cached_return_sets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return returns_.size();
}

size_t CompiledGrammar::n_classes_computed() const {
  std::lock_guard<std::mutex> lock(class_mu_);
  return owned_.size();
}

uint32_t TokenClass::interval(uint32_t count) const {
  return uint32_t(std::upper_bound(cuts.begin(), cuts.end(), count) - cuts.begin());
}

namespace {
void fill_parts(TokenClass& tc, std::vector<int32_t>& accepted, const Vocabulary& v) {
  tc.n_accepted = uint32_t(accepted.size());
  if (accepted.size() * 64 > size_t(v.size())) {
    tc.dense.assign(v.mask_words(), 0);
    for (int32_t id : accepted) tc.dense[size_t(id) >> 5] |= 1u << (id & 31);
  } else {
    std::sort(accepted.begin(), accepted.end());
    tc.sparse = std::move(accepted);
  }
}

// A counted-loop state: one walk over the trie with the item count k taken from 0 and the bounds turned into
// conditions on the run-time count (leaving the head into the item at k needs count + k < max, into the
// terminator count + k >= min). Counted rules make no calls, so the walk is a single DFA path per node.
void classify_counted(const Automaton& A, const Vocabulary& v, int32_t u, TokenClass& tc) {
  const TokenTrie& trie = v.trie();
  constexpr int64_t kInf = int64_t(UINT32_MAX);
  const Automaton::RuleInfo& r = A.rules[A.states[size_t(u)].rule];
  const int32_t head = r.start;
  const int64_t mn = r.loop_min, mx = r.loop_max == kUnbounded ? kInf : int64_t(r.loop_max);
  struct Level {
    int32_t state;
    int64_t k, lo, hi;
  };
  std::vector<Level> lv(size_t(trie.max_depth) + 2);
  lv[0] = {u, 0, 0, kInf};
  tc.counted = true;
  const uint32_t n = uint32_t(trie.size());
  uint32_t i = 1;
  while (i < n) {
    const uint32_t d = trie.depth[i];
    const Level p = lv[d - 1];
    const int32_t t = A.step(p.state, trie.byte[i]);
    if (t < 0) {
      i = trie.end[i];
      continue;
    }
    Level q{t, p.k, p.lo, p.hi};
    if (p.state == head) {
      if (A.states[size_t(t)].flags & Automaton::kLoopTail) {
        q.lo = std::max(q.lo, mn - p.k);
      } else if (mx != kInf) {
        q.hi = std::min(q.hi, mx - p.k - 1);
      }
    }
    if (t == head) ++q.k;
    q.lo = std::max<int64_t>(q.lo, 0);
    if (q.hi < q.lo) {  // conditions only tighten deeper down
      i = trie.end[i];
      continue;
    }
    for (uint32_t j = trie.tok_begin[i]; j < trie.tok_begin[i + 1]; ++j) {
      tc.centries.push_back({trie.ids[j], uint32_t(q.lo), uint32_t(q.hi)});
    }
    const bool children = trie.end[i] > i + 1;
    if (A.final(t) && children) tc.cexits.push_back({i, uint32_t(q.lo), uint32_t(q.hi)});
    if (children && A.has_bytes(t)) {
      lv[d] = q;
      ++i;
    } else {
      i = trie.end[i];
    }
  }
  for (const CountedEntry& e : tc.centries) {
    tc.cuts.push_back(e.lo);
    if (e.hi != UINT32_MAX) tc.cuts.push_back(e.hi + 1);
  }
  for (const CountedExit& e : tc.cexits) {
    tc.cuts.push_back(e.lo);
    if (e.hi != UINT32_MAX) tc.cuts.push_back(e.hi + 1);
  }
  std::sort(tc.cuts.begin(), tc.cuts.end());
  tc.cuts.erase(std::unique(tc.cuts.begin(), tc.cuts.end()), tc.cuts.end());
  tc.n_accepted = uint32_t(tc.centries.size());
  for (const CountedEntry& e : tc.centries) (e.lo == 0 ? tc.from0_by_hi : tc.late).push_back(e);
  std::sort(tc.from0_by_hi.begin(), tc.from0_by_hi.end(),
            [](const CountedEntry& a, const CountedEntry& b) { return a.hi < b.hi; });
  if (tc.centries.size() * 64 > size_t(v.size())) {
    tc.from0_dense.assign(v.mask_words(), 0);
    for (const CountedEntry& e : tc.from0_by_hi) tc.from0_dense[size_t(e.id) >> 5] |= 1u << (e.id & 31);
  }
}
}  // namespace

std::shared_ptr<const TokenClass> CompiledGrammar::counted_mask(int32_t c, uint32_t count) const {
  const TokenClass& tc = token_class(c);
  const uint64_t key = (uint64_t(uint32_t(c)) << 32) | tc.interval(count);
  {
    std::lock_guard<std::mutex> lock(class_mu_);
    auto it = counted_masks_.find(key);
    if (it != counted_masks_.end()) return it->second;
  }
  auto part = std::make_shared<TokenClass>();
  const size_t V = size_t(vocab_->size());
  if (tc.centries.size() * 64 <= V) {
    std::vector<int32_t> accepted;
    for (const CountedEntry& e : tc.centries) {
      if (e.lo <= count && count <= e.hi) accepted.push_back(e.id);
    }
    fill_parts(*part, accepted, *vocab_);
  } else {
    // Entries valid from 0 stay valid while count <= hi: drop the prefix with hi < count (or, when that is
    // most of them, set the suffix on an empty mask). Then add the late entries that apply.
    const auto& h = tc.from0_by_hi;
    size_t cut = size_t(std::lower_bound(h.begin(), h.end(), count,
                                         [](const CountedEntry& e, uint32_t c) { return e.hi < c; }) -
                        h.begin());
    auto& m = part->dense;
    if (cut * 2 <= h.size()) {
      m = tc.from0_dense;
      for (size_t k = 0; k < cut; ++k) m[size_t(h[k].id) >> 5] &= ~(1u << (h[k].id & 31));
    } else {
      m.assign(vocab_->mask_words(), 0);
      for (size_t k = cut; k < h.size(); ++k) m[size_t(h[k].id) >> 5] |= 1u << (h[k].id & 31);
    }
    for (const CountedEntry& e : tc.late) {
      if (e.lo <= count && count <= e.hi) m[size_t(e.id) >> 5] |= 1u << (e.id & 31);
    }
  }
  std::lock_guard<std::mutex> lock(class_mu_);
  return counted_masks_.emplace(key, std::move(part)).first->second;
}

// One walk of the whole token trie from a representative state of the class, with the stack below it unknown:
// tokens consumed inside are accepted; nodes where the state's rule can return with bytes left are recorded.
// Computed without holding the lock (classes are independent; two threads racing on one class compute it
// twice and the first result is kept), published under it.
const TokenClass& CompiledGrammar::compute_class(int32_t c) const {
  if (const TokenClass* p = classes_[size_t(c)].load(std::memory_order_acquire)) return *p;
  const TokenTrie& trie = vocab_->trie();
  auto tc = std::make_unique<TokenClass>();
  if (automaton_.counted(reps_[size_t(c)])) {
    classify_counted(automaton_, *vocab_, reps_[size_t(c)], *tc);
  } else {
    StackArena arena;
    WalkScratch ws;
    std::vector<int32_t> accepted;
    Config start{reps_[size_t(c)], -1};
    t_truncated = false;
    walk_trie(
        automaton_, trie, arena, 0, &start, 1, ws,
        [&](uint32_t node) {
          for (uint32_t j = trie.tok_begin[node]; j < trie.tok_begin[node + 1]; ++j)
            accepted.push_back(trie.ids[j]);
        },
        [&](uint32_t node) { tc->exits.push_back(node); });
    tc->inexact = t_truncated;
    fill_parts(*tc, accepted, *vocab_);
  }
  std::lock_guard<std::mutex> lock(class_mu_);
  if (const TokenClass* p = classes_[size_t(c)].load(std::memory_order_acquire)) return *p;
  const TokenClass* p = tc.get();
  owned_.push_back(std::move(tc));
  classes_[size_t(c)].store(p, std::memory_order_release);
  return *p;
}

Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(const Grammar& g,
                                                               std::shared_ptr<const Vocabulary> vocab,
                                                               const CompileOptions& opt) {
  if (!vocab) return invalid_argument("compile_grammar: no vocabulary");
  auto t0 = std::chrono::steady_clock::now();
  auto cg = std::make_shared<CompiledGrammar>();
  cg->vocab_ = vocab;
  TAILOR_ASSIGN_OR_RETURN(cg->automaton_, build_automaton(g, opt.limits));
  cg->grammar_text_ = g.to_text();
  const Automaton& A = cg->automaton_;
  cg->stats_.automaton_ms = ms_since(t0);
  cg->stats_.n_states = A.states.size();
  cg->stats_.n_rules = A.rules.size();
  cg->stats_.n_byte_classes = A.n_classes;

  auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> group = refine_states(A, vocab->trie().max_depth);
  if (std::getenv("NOREFINE"))
    for (size_t s = 0; s < group.size(); ++s) group[s] = int32_t(s);
  cg->stats_.refine_ms = ms_since(t1);
  // Classes numbered in breadth-first order from the start, so that the eager budget goes to the states a
  // generation meets first.
  std::vector<int32_t> group_class(A.states.size(), -1);
  cg->class_of_.assign(A.states.size(), -1);
  {
    std::vector<uint8_t> seen(A.states.size(), 0);
    std::vector<int32_t> queue{A.root_start()};
    seen[size_t(A.root_start())] = 1;
    for (size_t h = 0; h < queue.size(); ++h) {
      int32_t s = queue[h];
      if (A.has_bytes(s)) {
        int32_t& gc = group_class[size_t(group[size_t(s)])];
        if (gc < 0) {
          gc = int32_t(cg->reps_.size());
          cg->reps_.push_back(s);
        }
        cg->class_of_[size_t(s)] = gc;
      }
      auto visit = [&](int32_t t) {
        if (t >= 0 && !seen[size_t(t)]) {
          seen[size_t(t)] = 1;
          queue.push_back(t);
        }
      };
      for (uint32_t c = 0; c < A.n_classes; ++c) visit(A.next[size_t(s) * A.n_classes + c]);
      for (uint32_t k = A.states[size_t(s)].calls_begin; k < A.states[size_t(s)].calls_end; ++k) {
        visit(A.calls[k].ret);
        visit(A.rules[A.calls[k].rule].start);
      }
    }
  }
  const size_t n_classes = cg->reps_.size();
  cg->classes_ = std::make_unique<std::atomic<const TokenClass*>[]>(n_classes);
  for (size_t k = 0; k < n_classes; ++k) cg->classes_[k].store(nullptr, std::memory_order_relaxed);
  cg->stats_.n_token_classes = n_classes;

  auto t2 = std::chrono::steady_clock::now();
  const double budget =
      std::getenv("TAILOR_EAGER_MS") ? std::atof(std::getenv("TAILOR_EAGER_MS")) : opt.eager_ms;
  if (budget != 0 && n_classes > 0) {
    // Classes in breadth-first order, spread over the thread pool; each worker stops taking classes once the
    // budget is spent.
    std::atomic<size_t> next{0};
    const CompiledGrammar* self = cg.get();
    ThreadPool& pool = opt.threads ? *opt.threads : compile_pool();
    pool.parallel_for(pool.size(), 1, [&](int64_t, int64_t) {
      while (true) {
        if (budget >= 0 && ms_since(t2) >= budget) return;
        size_t k = next.fetch_add(1);
        if (k >= n_classes) return;
        self->compute_class(int32_t(k));
      }
    });
  }
  for (size_t k = 0; k < n_classes; ++k) {
    const TokenClass* tc = cg->classes_[k].load(std::memory_order_acquire);
    if (!tc) continue;
    ++cg->stats_.n_eager;
    cg->stats_.n_dense += tc->dense.empty() ? 0 : 1;
    cg->stats_.n_exit_nodes += tc->exits.size();
  }
  cg->stats_.classify_ms = ms_since(t2);
  return std::shared_ptr<const CompiledGrammar>(std::move(cg));
}

}  // namespace tailor::grammar
