// The steps of the pipeline as a backend implements them. The engine (engine.cpp) calls them in
// SPEC's order and owns the flow; a backend owns only where the data lives and how each step
// runs. The CPU stages compute each step when it is called; the CUDA stages enqueue it on their
// stream (with their workspace reserved per shape, cached graph replays, resident tokens and
// hidden states, and dependent launches) and bring every result home in finish().
#pragma once

#include "qmpp/types.h"

#include <memory>
#include <string>

namespace qmpp {

class Stages {
  public:
    virtual ~Stages() = default;
    virtual std::string name() const = 0;   // "cpu", "cuda-basic", "cuda"
    virtual std::string device() const = 0; // human-readable device name
    // Whether these stages run `p` themselves; when not, the engine runs the CPU stages and says
    // so in the result's notes (`why`).
    virtual bool supports(const MergeParams& p, std::string& why) const = 0;

    // Binds one run's input: r's header (n, d, k, backend, device, precision) is set, and the
    // tokens (and hidden states or attention maps) are staged where the steps read them.
    virtual void begin(const TokenSet& t, const MergeParams& p, i64 k, MergeResult& r) = 0;
    // 1. Attention entropies H [L, N] from the input's best source, and s = 1 - mean minmax(H).
    virtual void saliency(MergeResult& r) = 0;
    // 2-3. Uniforms u, keys s + g, the Gumbel-softmax mask pi, the hard foreground F (top-K of
    // the keys) and the mass m = pi s + (1 - pi) eps.
    virtual void mask(MergeResult& r) = 0;
    // 4. Groups 0..K-1 by cosine similarity (seeded from F, or an exact method).
    virtual void cluster(MergeResult& r) = 0;
    // 5. Mass-weighted merge, ordered by each group's first token; labels index the merged rows.
    virtual void merge(MergeResult& r) = 0;
    // ToMe, top-K or random in place of steps 2-5 (no mask: pi = 0, mass = 1).
    virtual void baseline(MergeResult& r) = 0;
    // 6. The AR heads' per-position errors and L_AR.
    virtual void arLoss(const ArHeads& heads, MergeResult& r) = 0;
    // 7. Metrics and the fidelity loss.
    virtual void metrics(MergeResult& r) = 0;
    // Every result on the host, the losses' total, and the stage timings.
    virtual void finish(MergeResult& r) = 0;
};

std::unique_ptr<Stages> makeCpuStages();

// The engine over any stages: validation is the caller's (runMerge validates).
MergeResult runStages(Stages& stages, const TokenSet& t, const MergeParams& p, i64 k);

class Backend;
// A Backend (qmpp/engine.h) that runs these stages through the engine.
std::unique_ptr<Backend> makeStagedBackend(std::unique_ptr<Stages> stages);

} // namespace qmpp
