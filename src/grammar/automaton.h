// The compiled form of a Grammar: a byte-level pushdown automaton. Each rule that is not inlined becomes one
// DFA over byte classes; a DFA state may also "call" another rule (push the return state, jump to the
// callee's start) and, when final, "return" (pop). Rules that are not recursive and small or used once are
// inlined into their callers so that most JSON schemas run as a handful of DFAs. Left recursion and rules
// that match nothing are rejected with an error naming the rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

struct AutomatonLimits {
  uint32_t max_nfa_states = 4'000'000;  // after inlining and expanding counted repetitions
  uint32_t max_dfa_states = 400'000;    // all rules together
  // Subset-construction steps (NFA states visited by closures and scanned per DFA state) for one rule: bounds
  // the time a pattern with few DFA states but huge state sets takes, e.g. (a|b|){25,}: about 0.5 s of work.
  uint64_t max_determinize_work = 100'000'000;
};

struct Automaton {
  enum Flag : uint8_t {
    kFinal = 1,         // the state's rule may return here
    kHasBytes = 2,      // some byte moves out of the state
    kNeedsClosure = 4,  // final or has calls: stepping into it must expand calls / returns
    kCounted = 8,       // the state belongs to a counted-loop rule (see RuleInfo::counted)
    kLoopTail = 16,     // ... and lies in its terminator part (after the loop)
  };
  struct State {
    uint32_t rule = 0;  // index into rules
    uint32_t calls_begin = 0, calls_end = 0;
    uint8_t flags = 0;
  };
  struct Call {
    uint32_t rule;  // callee (index into rules)
    int32_t ret;    // state to continue in when the callee returns
  };
  // A counted-loop rule is `X{min,max} Y` with X a prefix-free, call-free item and Y a call-free terminator
  // whose first bytes differ from X's. Instead of unrolling max copies of X, its DFA is X* Y with a counter
  // in the configuration: every return to the start state (the loop head) counts one X; leaving the head into
  // X needs count < max, into Y needs count >= min. This keeps maxLength 1000 strings at a dozen states.
  struct RuleInfo {
    std::string name;
    int32_t start = -1;
    uint32_t min_len = 0;  // bytes of the shortest string the rule matches
    bool counted = false;
    uint32_t loop_min = 0, loop_max = 0;  // loop_max may be kUnbounded
    uint32_t item_min_len = 0;            // shortest X in bytes
    int16_t head_item_byte = -1;          // first byte of a shortest X
  };

  std::vector<State> states;
  std::vector<Call> calls;
  std::vector<RuleInfo> rules;  // rules[0] is the grammar's root
  uint32_t n_classes = 1;
  std::array<uint8_t, 256> byte_class{};         // byte -> class; classes are contiguous byte intervals
  std::vector<uint8_t> class_first_byte;         // class -> its lowest byte
  std::vector<int32_t> next;                     // [states.size() * n_classes] -> state, -1 = no move
  std::vector<std::array<uint64_t, 4>> allowed;  // per state: the bytes with a move (256-bit set)
  std::vector<uint32_t> dist;      // per state: fewest bytes to reach a final state of its own rule
  std::vector<int16_t> best_byte;  // per state: a byte starting a shortest completion in the rule, -1 if none

  int32_t step(int32_t s, uint8_t b) const { return next[size_t(s) * n_classes + byte_class[b]]; }
  bool final(int32_t s) const { return states[s].flags & kFinal; }
  bool has_bytes(int32_t s) const { return states[s].flags & kHasBytes; }
  bool needs_closure(int32_t s) const { return states[s].flags & kNeedsClosure; }
  bool counted(int32_t s) const { return states[s].flags & kCounted; }
  bool allows(int32_t s, uint8_t b) const { return (allowed[s][b >> 6] >> (b & 63)) & 1; }
  int32_t root_start() const { return rules[0].start; }
};

Result<Automaton> build_automaton(const Grammar& g, const AutomatonLimits& limits = {});

}  // namespace tailor::grammar
