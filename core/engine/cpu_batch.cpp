// The CPU batch stages: every item of the batch through the CPU steps (ops.h), in turn.
#include "qmpp/batch.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cstring>

namespace qmpp {

namespace {

class CpuBatchStages final : public BatchStages {
  public:
    std::string name() const override { return "cpu"; }
    Memory memory() const override { return Memory::Host; }

    void begin(const TokenBatch& in, const StepParams& p, const StepOutput& out) override {
        if (in.precision != Precision::FP32)
            throw UsageError("the CPU merge step takes FP32 tokens only");
        m_in = &in;
        m_p = &p;
        m_out = out;
        m_kMax = p.kMax();
        m_items.assign(static_cast<std::size_t>(in.b), Item{});
        for (i64 b = 0; b < in.b; ++b) {
            m_items[std::size_t(b)].n = in.itemTokens(b);
            m_items[std::size_t(b)].groups = p.k[std::size_t(b)] - in.keepFirst;
        }
        std::fill_n(out.labels, in.b * in.n, std::int32_t(-1));
        std::fill_n(static_cast<float*>(out.merged), in.b * m_kMax * in.d, 0.0f);
        std::fill_n(out.counts, in.b * m_kMax, 0.0f);
        for (float* a : {out.saliency, out.mass})
            if (a) std::fill_n(a, in.b * in.n, 0.0f);
    }

    void saliency() override {
        forItems([&](i64 b, Item& it) {
            const i64 p = m_in->keepFirst, m = it.n - p;
            it.s.assign(static_cast<std::size_t>(m), 0.0f);
            if (m_in->saliency) {
                const float* s = m_in->saliency + b * m_in->n + p;
                it.s.assign(s, s + m);
            } else if (m_in->entropy) {
                const float* h = m_in->entropy + b * m_in->n + p;
                it.s = saliencyFromEntropy(std::vector<double>(h, h + m), 1, m);
            }
            if (m_out.saliency)
                std::copy(it.s.begin(), it.s.end(), m_out.saliency + b * m_in->n + p);
        });
    }

    void mask() override {
        forItems([&](i64 b, Item& it) {
            const i64 m = it.n - m_in->keepFirst;
            const std::vector<float> u = philoxUniforms(m, m_p->seed, offsetOf(b));
            std::vector<float> pi;
            std::vector<double> keys;
            gumbelSoftmax(it.s, u, m_p->temperature, pi, keys, m_p->gumbelScale);
            it.foreground = topK(keys, it.groups);
            it.mass = saliencyMass(pi, it.s, m_p->epsilon);
            if (m_out.mass)
                std::copy(it.mass.begin(), it.mass.end(),
                          m_out.mass + b * m_in->n + m_in->keepFirst);
            it.weights = it.mass;
            const float* c = countsOf(b);
            if (c)
                for (i64 i = 0; i < m; ++i)
                    it.weights[i] *= c[i];
        });
    }

    void cluster() override {
        forItems([&](i64 b, Item& it) {
            const i64 dm = metricDim();
            it.labels = clusterSeeded(metricOf(b), it.n - m_in->keepFirst, dm, it.weights,
                                      it.foreground, m_p->refine);
        });
    }

    void merge() override {
        forItems([&](i64 b, Item& it) {
            const i64 p = m_in->keepFirst, m = it.n - p, d = m_in->d;
            std::vector<float> merged;
            std::vector<i64> sizes;
            mergeWeighted(tokensOf(b) + p * d, m, d, it.weights, it.labels, it.groups, merged,
                          sizes);
            std::vector<double> sums(static_cast<std::size_t>(it.groups), 0.0);
            const float* c = countsOf(b);
            for (i64 i = 0; i < m; ++i)
                sums[it.labels[i]] += c ? c[i] : 1.0;
            std::vector<float> counts(sums.begin(), sums.end());
            write(b, it, merged, counts, [&](i64 i) { return p + it.labels[i]; });
        });
    }

    void baseline() override {
        forItems([&](i64 b, Item& it) {
            const i64 p = m_in->keepFirst, m = it.n - p, d = m_in->d;
            if (m_p->method == Method::ToMe) {
                const i64 r = it.n - m_k(b);
                std::vector<float> merged(static_cast<std::size_t>((it.n - r) * d)),
                    counts(static_cast<std::size_t>(it.n - r));
                std::vector<std::int32_t> slot(static_cast<std::size_t>(it.n));
                const float* c = m_in->counts ? m_in->counts + b * m_in->n : nullptr;
                tomeRound(itemMetric(b), metricDim(), tokensOf(b), d, c, it.n, r, p > 0,
                          merged.data(), counts.data(), slot.data());
                std::int32_t* labels = m_out.labels + b * m_in->n;
                std::copy(slot.begin(), slot.end(), labels);
                copyRows(b, merged, counts);
                return;
            }
            // pruning: the k largest saliencies (top-K) or uniforms (random) stay, in order
            std::vector<double> keys;
            if (m_p->method == Method::TopK)
                keys.assign(it.s.begin(), it.s.end());
            else {
                const auto u = philoxUniforms(m, m_p->seed, offsetOf(b));
                keys.assign(u.begin(), u.end());
            }
            const std::vector<i64> keep = topK(keys, it.groups);
            std::vector<float> merged, counts;
            std::vector<i64> label(static_cast<std::size_t>(m), -1);
            const float* x = tokensOf(b) + p * d;
            const float* c = countsOf(b);
            for (std::size_t g = 0; g < keep.size(); ++g) {
                label[keep[g]] = p + i64(g);
                merged.insert(merged.end(), x + keep[g] * d, x + (keep[g] + 1) * d);
                counts.push_back(c ? c[keep[g]] : 1.0f);
            }
            write(b, it, merged, counts, [&](i64 i) { return label[i]; });
        });
    }

    void finish() override {}

  private:
    struct Item {
        i64 n = 0, groups = 0; // tokens, and groups of the mergeable ones
        std::vector<float> s, mass, weights;
        std::vector<i64> foreground, labels;
    };

    template <class F> void forItems(F&& f) {
        for (i64 b = 0; b < m_in->b; ++b) {
            f(b, m_items[std::size_t(b)]);
        }
    }
    i64 m_k(i64 b) const { return m_p->k[std::size_t(b)]; }
    std::uint64_t offsetOf(i64 b) const {
        return m_p->offset.empty() ? 0 : m_p->offset[std::size_t(b)];
    }
    i64 metricDim() const {
        return m_in->metric ? (m_in->metricDim ? m_in->metricDim : m_in->d) : m_in->d;
    }
    const float* tokensOf(i64 b) const {
        return static_cast<const float*>(m_in->x) + b * m_in->n * m_in->d;
    }
    // item b's metric rows, all of them; metricOf: the mergeable ones (past the kept-first)
    const float* itemMetric(i64 b) const {
        return m_in->metric ? static_cast<const float*>(m_in->metric) + b * m_in->n * metricDim()
                            : tokensOf(b);
    }
    const float* metricOf(i64 b) const { return itemMetric(b) + m_in->keepFirst * metricDim(); }
    const float* countsOf(i64 b) const {
        return m_in->counts ? m_in->counts + b * m_in->n + m_in->keepFirst : nullptr;
    }
    // Item b's output: the kept-first tokens, then `merged`; labels of the others from `row`.
    template <class Row>
    void write(i64 b, const Item& it, const std::vector<float>& merged,
               const std::vector<float>& counts, Row&& row) {
        const i64 p = m_in->keepFirst, d = m_in->d;
        std::vector<float> all(tokensOf(b), tokensOf(b) + p * d);
        all.insert(all.end(), merged.begin(), merged.end());
        std::vector<float> c(static_cast<std::size_t>(p), 1.0f);
        if (m_in->counts) std::copy_n(m_in->counts + b * m_in->n, p, c.begin());
        c.insert(c.end(), counts.begin(), counts.end());
        std::int32_t* labels = m_out.labels + b * m_in->n;
        for (i64 i = 0; i < p; ++i)
            labels[i] = static_cast<std::int32_t>(i);
        for (i64 i = 0; i < it.n - p; ++i)
            labels[p + i] = static_cast<std::int32_t>(row(i));
        copyRows(b, all, c);
    }
    void copyRows(i64 b, const std::vector<float>& merged, const std::vector<float>& counts) {
        float* out = static_cast<float*>(m_out.merged) + b * m_kMax * m_in->d;
        std::copy(merged.begin(), merged.end(), out);
        std::copy(counts.begin(), counts.end(), m_out.counts + b * m_kMax);
    }

    const TokenBatch* m_in = nullptr;
    const StepParams* m_p = nullptr;
    StepOutput m_out;
    i64 m_kMax = 0;
    std::vector<Item> m_items;
};

} // namespace

std::unique_ptr<BatchStages> makeCpuBatchStages() {
    return std::make_unique<CpuBatchStages>();
}

} // namespace qmpp
