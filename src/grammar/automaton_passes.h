// Passes over a built Automaton (internal to src/grammar; automaton.cpp runs them at the end of the build).
#pragma once

#include "core/status.h"
#include "grammar/automaton.h"

namespace tailor::grammar {

// Error naming the cycle when a rule can call itself without consuming a byte (left recursion).
Status check_left_recursion(const Automaton& A);
// Fills allowed (byte sets), dist / best_byte (shortest completion within each rule) and the rules' min_len,
// item_min_len and head_item_byte.
void compute_byte_sets_and_distances(Automaton& A);

}  // namespace tailor::grammar
