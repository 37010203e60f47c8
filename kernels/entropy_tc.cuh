// Internal to kernels/: the optimized attention-entropy launchers (entropy_tc.cu), called by
// the dispatchers in entropy.cu.
#pragma once

#include "common.cuh"

namespace qmpp::kernels {

std::size_t entropyGramTcWorkBytes(const EntropyGramParams& p, Prec prec);
void entropyGramTc(const EntropyGramParams& p, Prec prec, cudaStream_t s);

} // namespace qmpp::kernels
