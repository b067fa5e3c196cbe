#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <chrono>

#include "grammar/pda.h"

namespace tailor::grammar {

namespace {

constexpr size_t kMaxCachedReturnIds = size_t(32) << 20;  // ~128 MB of ids, then the cache starts over
constexpr uint64_t kRefineBudget = 80'000'000;            // state x class x round work for merging states

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct U32VecHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ uint32_t(x)) * 1099511628211ull;
    return size_t(h ^ (h >> 29));
  }
};

// Groups states that behave alike on every byte string of up to `depth` bytes (Moore refinement cut at
// `depth` rounds): no token can tell them apart, so they share one classification. This is what keeps
// counted repetitions (maxLength 500) from costing one trie walk per count.
std::vector<int32_t> refine_states(const Automaton& A, uint32_t depth) {
  size_t n = A.states.size();
  uint32_t C = A.n_classes;
  std::vector<int32_t> cls(n);
  if (uint64_t(n) * C * depth > kRefineBudget) {
    for (size_t s = 0; s < n; ++s) cls[s] = int32_t(s);
    return cls;
  }
  std::unordered_map<std::vector<int32_t>, int32_t, U32VecHash> ids;
  std::vector<int32_t> sig;
  for (size_t s = 0; s < n; ++s) {
    const Automaton::State& st = A.states[s];
    sig.assign({int32_t(st.flags & (Automaton::kFinal | Automaton::kHasBytes))});
    for (uint32_t k = st.calls_begin; k < st.calls_end; ++k) {
      sig.push_back(int32_t(A.calls[k].rule));
      sig.push_back(A.calls[k].ret);
    }
    cls[s] = ids.try_emplace(sig, int32_t(ids.size())).first->second;
  }
  size_t count = ids.size();
  std::vector<int32_t> ncls(n);
  for (uint32_t round = 0; round < depth; ++round) {
    ids.clear();
    for (size_t s = 0; s < n; ++s) {
      sig.assign({cls[s]});
      for (uint32_t c = 0; c < C; ++c) {
        int32_t t = A.next[s * C + c];
        sig.push_back(t < 0 ? -1 : cls[size_t(t)]);
      }
      ncls[s] = ids.try_emplace(sig, int32_t(ids.size())).first->second;
    }
    cls.swap(ncls);
    if (ids.size() == count) break;  // stable: further rounds split nothing
    count = ids.size();
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

Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(const Grammar& g,
                                                               std::shared_ptr<const Vocabulary> vocab) {
  if (!vocab) return invalid_argument("compile_grammar: no vocabulary");
  auto t0 = std::chrono::steady_clock::now();
  auto cg = std::make_shared<CompiledGrammar>();
  cg->vocab_ = vocab;
  TAILOR_ASSIGN_OR_RETURN(cg->automaton_, build_automaton(g));
  cg->grammar_text_ = g.to_text();
  const Automaton& A = cg->automaton_;
  cg->stats_.automaton_ms = ms_since(t0);
  cg->stats_.n_states = A.states.size();
  cg->stats_.n_rules = A.rules.size();
  cg->stats_.n_byte_classes = A.n_classes;

  auto t1 = std::chrono::steady_clock::now();
  const TokenTrie& trie = vocab->trie();
  std::vector<int32_t> group = refine_states(A, trie.max_depth);
  // One classification per group that has a byte-consuming state.
  std::vector<int32_t> group_class(A.states.size(), -1);
  std::vector<int32_t> reps;
  cg->class_of_.assign(A.states.size(), -1);
  for (size_t s = 0; s < A.states.size(); ++s) {
    if (!A.has_bytes(int32_t(s))) continue;
    int32_t& gc = group_class[size_t(group[s])];
    if (gc < 0) {
      gc = int32_t(reps.size());
      reps.push_back(int32_t(s));
    }
    cg->class_of_[s] = gc;
  }
  cg->classes_.resize(reps.size());
  const size_t V = size_t(vocab->size());
  const size_t words = vocab->mask_words();
  StackArena arena;
  WalkScratch ws;
  std::vector<int32_t> accepted;
  for (size_t k = 0; k < reps.size(); ++k) {
    TokenClass& tc = cg->classes_[k];
    accepted.clear();
    arena.clear();
    Config start{reps[k], -1};
    walk_trie(
        A, trie, arena, 0, &start, 1, ws,
        [&](uint32_t node) {
          for (uint32_t j = trie.tok_begin[node]; j < trie.tok_begin[node + 1]; ++j)
            accepted.push_back(trie.ids[j]);
        },
        [&](uint32_t node) { tc.exits.push_back(node); });
    tc.n_accepted = uint32_t(accepted.size());
    if (accepted.size() * 64 > V) {
      tc.dense.assign(words, 0);
      for (int32_t id : accepted) tc.dense[size_t(id) >> 5] |= 1u << (id & 31);
      ++cg->stats_.n_dense;
    } else {
      std::sort(accepted.begin(), accepted.end());
      tc.sparse = accepted;
    }
    cg->stats_.n_exit_nodes += tc.exits.size();
  }
  cg->stats_.n_token_classes = reps.size();
  cg->stats_.classify_ms = ms_since(t1);
  return std::shared_ptr<const CompiledGrammar>(std::move(cg));
}

}  // namespace tailor::grammar
