// Diagnostics of the method itself, from one result: is the Gumbel-softmax mask degenerate,
// how much of the hard foreground the Gumbel noise chose rather than the saliency, and how
// closely saliency follows token position (for text, where position is the likeliest cause).
#pragma once

#include "qmpp/types.h"

#include <string>
#include <vector>

namespace qmpp {

struct MethodDiagnostics {
    bool hasMask = false;   // QuickMerge++ results only (the baselines have no pi or F)
    double piMax = 0;       // the largest pi_i
    double piEffective = 0; // 1 / sum pi_i^2: how many tokens share the mask (1 to N)
    // tokens whose mass m_i is within 1 % of epsilon: the mask leaves them at the background
    double massAtEpsilon = 0;  // a share of N
    bool piDegenerate = false; // pi_max >= 0.5: one token holds most of the mask
    // |F \ F0| / K, F0 = the K largest s (the same tie rule): the share of the hard foreground
    // that changes when the noise is off
    double noiseDecided = 0;
    bool noiseDominates = false; // noiseDecided >= 0.25
    // Spearman's rank correlation of s with the token index (ties share their mean rank); NaN
    // when s is constant or N < 3
    double positionRankCorrelation = 0;
    bool followsPosition = false; // |rho| >= 0.5
};

MethodDiagnostics diagnose(const MergeResult& r, double epsilon);

// One line per finding a user should act on (empty when none), for the studio and reports.
std::vector<std::string> diagnosticWarnings(const MethodDiagnostics& d, double tau);

} // namespace qmpp
