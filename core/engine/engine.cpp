// The QuickMerge++ pipeline, read top to bottom (SPEC "The pipeline"). Backends implement the
// steps (qmpp/stages.h); this file owns their order, and nothing else does.
#include "qmpp/engine.h"
#include "qmpp/batch.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "qmpp/progress.h"
#include "qmpp/stages.h"

namespace qmpp {

MergeResult runStages(Stages& st, const TokenSet& t, const MergeParams& p, i64 k) {
    MergeResult r;
    r.method = toString(p.method);
    const i64 total = p.method == Method::QuickMerge ? 6 : 4;
    i64 done = 0;
    auto next = [&] { // between stages: report, and stop when the caller no longer wants it
        throwIfStopped();
        if (p.progress && !p.progress(++done, total)) throw Cancelled();
    };
    st.begin(t, p, k, r);
    st.saliency(r); // 1. low attention entropy = focused attention = salient
    next();
    if (p.method == Method::QuickMerge) {
        st.mask(r); // 2-3. Gumbel-softmax mask, hard foreground, saliency mass
        next();
        st.cluster(r); // 4. K groups by cosine similarity
        next();
        st.merge(r); // 5. saliency-weighted, order-preserving merge
        next();
    } else {
        st.baseline(r); // ToMe, top-K or random on the same K
        next();
    }
    const auto heads = p.arHeads ? p.arHeads : defaultArHeads(t.d);
    r.arHeadsSource = heads->source;
    st.arLoss(*heads, r); // 6. AR prior
    next();
    st.metrics(r); // 7. label-free metrics and the seed's fidelity loss
    next();
    st.finish(r);
    nearestKeptMetrics(t, r); // pruning's fair figure, beside the zero-fill one
    r.losses.total = p.alpha * r.losses.ar + r.losses.fidelity;
    return r;
}

// The same steps on a batch, as a model calls them between blocks.
void mergeStep(BatchStages& st, const TokenBatch& in, const StepParams& p, const StepOutput& out) {
    validateStep(in, p, out, st.memory());
    st.begin(in, p, out);
    st.saliency(); // given (the model's attention), or 1 - minmax of the entropies
    if (p.method == Method::QuickMerge) {
        st.mask();    // Gumbel-softmax mask at each item's offset, foreground, mass
        st.cluster(); // K groups by cosine similarity of the metric, weights m c
        st.merge();   // weighted, order-preserving merge; counts summed
    } else {
        st.baseline(); // ToMe's round, top-K or random pruning, with counts
    }
    st.finish();
}

namespace {
thread_local const std::atomic<int>* tStop = nullptr;
} // namespace

StopScope::StopScope(const std::atomic<int>* flag) : m_previous(tStop) {
    tStop = flag;
}
StopScope::~StopScope() {
    tStop = m_previous;
}
const std::atomic<int>* stopFlag() {
    return tStop;
}
void throwIfStopped() {
    if (stopRequested(tStop)) throw Cancelled();
}

namespace {

// A Backend is its stages run by the engine; steps the stages do not run go to the CPU's.
class StagedBackend final : public Backend {
  public:
    explicit StagedBackend(std::unique_ptr<Stages> s) : m_stages(std::move(s)) {}
    std::string name() const override { return m_stages->name(); }
    std::string device() const override { return m_stages->device(); }
    MergeResult run(const TokenSet& t, const MergeParams& p, i64 k) override {
        std::string why;
        if (m_stages->supports(p, why)) return runStages(*m_stages, t, p, k);
        if (!m_cpu) m_cpu = makeCpuStages();
        MergeResult r = runStages(*m_cpu, t, p, k);
        r.notes.push_back(why);
        return r;
    }

  private:
    std::unique_ptr<Stages> m_stages, m_cpu;
};

} // namespace

std::unique_ptr<Backend> makeStagedBackend(std::unique_ptr<Stages> stages) {
    return std::make_unique<StagedBackend>(std::move(stages));
}

std::unique_ptr<Backend> makeCpuBackend() {
    return makeStagedBackend(makeCpuStages());
}

} // namespace qmpp
