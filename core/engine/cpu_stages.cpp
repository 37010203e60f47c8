// The CPU stages: each step computed when the engine calls it, accumulating in double (ops.h).
#include "parallel.h"
#include "qmpp/ops.h"
#include "qmpp/stages.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace qmpp {

namespace {

using Clock = std::chrono::steady_clock;

class CpuStages final : public Stages {
  public:
    std::string name() const override { return "cpu"; }
    std::string device() const override {
        const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
        return "CPU (" + std::to_string(threads) + " threads)";
    }
    bool supports(const MergeParams&, std::string&) const override { return true; }

    void begin(const TokenSet& t, const MergeParams& p, i64 k, MergeResult& r) override {
        m_t = &t;
        m_p = &p;
        m_k = k;
        // the Gram product dominates: N^2 D multiply-adds per layer
        const double layers = t.attention.empty() && t.hidden.empty() ? p.layers : 1;
        par::useThreadsFor(double(t.n) * double(t.n) * double(t.d) * layers);
        r.n = t.n;
        r.d = t.d;
        r.k = k;
        r.backend = name();
        r.device = device();
        r.precision = toString(Precision::FP32);
        m_start = m_last = Clock::now();
    }

    void saliency(MergeResult& r) override {
        const TokenSet& t = *m_t;
        std::vector<double> h;
        if (!t.attention.empty()) {
            r.layers = t.attnLayers;
            h = entropyMaps(t.attention.data(), t.attnLayers, t.attnHeads, t.n);
            r.saliencySource = "attention maps (L=" + std::to_string(t.attnLayers) +
                               ", H=" + std::to_string(t.attnHeads) + ")";
        } else if (!t.hidden.empty()) {
            r.layers = t.hiddenLayers;
            h = entropyHidden(t.hidden.data(), t.hiddenLayers, t.n, t.d);
            r.saliencySource = "hidden states (L=" + std::to_string(t.hiddenLayers) + ")";
        } else {
            r.layers = m_p->layers;
            h = entropyMultiScale(t.x.data(), t.n, t.d, m_p->layers);
            r.saliencySource =
                "tokens, multi-scale self-attention (L=" + std::to_string(m_p->layers) + ")";
        }
        r.layerEntropy.assign(h.begin(), h.end());
        r.saliency = saliencyFromEntropy(h, r.layers, t.n);
        lap(r, "saliency");
    }

    void mask(MergeResult& r) override {
        r.uniforms = m_p->uniforms.empty() ? philoxUniforms(m_t->n, m_p->seed) : m_p->uniforms;
        for (auto& u : r.uniforms)
            u = std::min(std::max(u, 1e-7f), 1.0f - 1e-7f);
        std::vector<double> keys;
        gumbelSoftmax(r.saliency, r.uniforms, m_p->temperature, r.pi, keys);
        r.foreground = topK(keys, m_k);
        r.mass = saliencyMass(r.pi, r.saliency, m_p->epsilon);
        lap(r, "gumbel");
    }

    void cluster(MergeResult& r) override {
        const TokenSet& t = *m_t;
        const float* x = t.x.data();
        switch (m_p->cluster) {
        case ClusterMethod::Seeded:
            r.labels =
                clusterSeeded(x, t.n, t.d, r.mass, r.foreground, m_p->refine, &r.refineRounds);
            break;
        case ClusterMethod::Agglomerative:
            r.labels = clusterAgglomerative(x, t.n, t.d, m_k);
            break;
        case ClusterMethod::Reference:
            r.labels = clusterReference(x, t.n, t.d, m_k);
            break;
        }
        lap(r, "cluster");
    }

    void merge(MergeResult& r) override {
        const TokenSet& t = *m_t;
        mergeWeighted(t.x.data(), t.n, t.d, r.mass, r.labels, m_k, r.merged, r.groupSizes);
        lap(r, "merge");
    }

    // No Gumbel mask (pi = 0) and uniform mass (1): ToMe averages by size, and pruning keeps
    // tokens unchanged.
    void baseline(MergeResult& r) override {
        const TokenSet& t = *m_t;
        const float* x = t.x.data();
        r.pi.assign(static_cast<std::size_t>(t.n), 0.0f);
        r.mass.assign(static_cast<std::size_t>(t.n), 1.0f);
        switch (m_p->method) {
        case Method::ToMe:
            r.labels = tomeMerge(x, t.n, t.d, m_k, r.merged, r.groupSizes, r.foreground);
            break;
        case Method::TopK:
            r.foreground = topK(std::vector<double>(r.saliency.begin(), r.saliency.end()), m_k);
            r.labels = pruneKeep(x, t.n, t.d, r.foreground, r.merged, r.groupSizes);
            break;
        case Method::Random:
            r.uniforms = m_p->uniforms.empty() ? philoxUniforms(t.n, m_p->seed) : m_p->uniforms;
            r.foreground = topK(std::vector<double>(r.uniforms.begin(), r.uniforms.end()), m_k);
            r.labels = pruneKeep(x, t.n, t.d, r.foreground, r.merged, r.groupSizes);
            break;
        case Method::QuickMerge:
            break;
        }
        if (r.uniforms.empty()) r.uniforms.assign(static_cast<std::size_t>(t.n), 0.0f); // none
        lap(r, "merge");
    }

    void arLoss(const ArHeads& heads, MergeResult& r) override {
        qmpp::arLoss(r.merged, m_k, m_t->d, heads, r.losses, r.metrics.arErrorForward,
                     r.metrics.arErrorBackward);
        lap(r, "ar_loss");
    }

    void metrics(MergeResult& r) override {
        const TokenSet& t = *m_t;
        computeMetrics(t, *m_p, r);
        r.losses.fidelity =
            fidelityLoss(t.x.data(), t.n, t.d, r.merged, m_k, r.metrics.normMassTopK);
        lap(r, "metrics");
    }

    void finish(MergeResult& r) override {
        r.timings.push_back(
            {"total", std::chrono::duration<double, std::milli>(Clock::now() - m_start).count()});
    }

  private:
    void lap(MergeResult& r, const char* stage) {
        const auto now = Clock::now();
        r.timings.push_back(
            {stage, std::chrono::duration<double, std::milli>(now - m_last).count()});
        m_last = now;
    }

    const TokenSet* m_t = nullptr;
    const MergeParams* m_p = nullptr;
    i64 m_k = 0;
    Clock::time_point m_start, m_last;
};

} // namespace

std::unique_ptr<Stages> makeCpuStages() {
    return std::make_unique<CpuStages>();
}

} // namespace qmpp
