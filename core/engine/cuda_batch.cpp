// The CUDA batch stages: a merge step on tensors already on the device (a model's hook between
// blocks), every item through the pipeline's kernels on one stream with no host round trip.
// Scratch buffers persist between calls and only grow, so a forward reserves them once per shape.
// The baselines run on the CPU stages (a download and an upload, noted in docs/gpu.md).
#include "qmpp/batch.h"
#include "qmpp/cuda_backend.h"
#include "qmpp/error.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"
#include "qmpp/kernels/params.h"

#include <algorithm>
#include <vector>

namespace qmpp {

namespace k = kernels;
using k::DeviceBuffer;

namespace {

class CudaBatchStages final : public BatchStages {
  public:
    explicit CudaBatchStages(bool optimized) : m_optimized(optimized) {
        QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
    }
    ~CudaBatchStages() override { QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(m_stream)); }
    std::string name() const override { return m_optimized ? "cuda" : "cuda-basic"; }
    Memory memory() const override { return Memory::Device; }

    void begin(const TokenBatch& in, const StepParams& p, const StepOutput& out) override {
        m_in = &in;
        m_p = &p;
        m_out = out;
        m_kMax = p.kMax();
        m_prec = in.precision == Precision::FP16 ? k::Prec::F16 : k::Prec::F32;
        m_elem = m_prec == k::Prec::F16 ? 2 : 4;
        const std::size_t B = std::size_t(in.b), N = std::size_t(in.n), D = std::size_t(in.d);
        QMPP_CUDA_CHECK(
            cudaMemsetAsync(out.merged, 0, B * std::size_t(m_kMax) * D * m_elem, m_stream));
        QMPP_CUDA_CHECK(cudaMemsetAsync(out.counts, 0, B * std::size_t(m_kMax) * 4, m_stream));
        QMPP_CUDA_CHECK(cudaMemsetAsync(out.labels, 0xff, B * N * 4, m_stream)); // -1
        for (float* a : {out.saliency, out.mass})
            if (a) QMPP_CUDA_CHECK(cudaMemsetAsync(a, 0, B * N * 4, m_stream));
        m_s.resize(B * N);
        m_w.resize(B * N);
        m_mass.resize(B * N);
        m_labels.resize(B * N);
        m_fg.resize(B * N);
        m_founderOf.resize(B * N);
    }

    void saliency() override {
        for (i64 b = 0; b < m_in->b; ++b) {
            const int m = mergeable(b);
            float* s = m_s.get() + b * m_in->n;
            if (m_in->saliency) {
                copy(s, m_in->saliency + b * m_in->n + m_in->keepFirst, std::size_t(m) * 4);
            } else if (m_in->entropy) {
                m_minmax.resize(2);
                k::saliency(k::saliencyParams(m_in->entropy + b * m_in->n + m_in->keepFirst, 1, m,
                                              m_minmax.get(), s),
                            version(k::Kernel::Saliency), m_stream);
            }
            if (m_out.saliency && (m_in->saliency || m_in->entropy))
                copy(m_out.saliency + b * m_in->n + m_in->keepFirst, s, std::size_t(m) * 4);
        }
    }

    void mask() override {
        const bool deviceFounders = version(k::Kernel::TopK) == k::Version::Optimized;
        for (i64 b = 0; b < m_in->b; ++b) {
            const int m = mergeable(b), g = groups(b);
            const i64 at = b * m_in->n;
            m_u.resize(m);
            m_keys.resize(m);
            m_pi.resize(m);
            m_scratch.resize(2);
            m_sel.resize(m);
            k::philoxUniforms(m_u.get(), std::size_t(m), m_p->seed, m_stream,
                              m_p->offset.empty() ? 0 : m_p->offset[std::size_t(b)]);
            k::GumbelParams gp = k::gumbelParams(
                m_s.get() + at, m_u.get(), m, float(m_p->temperature), float(m_p->epsilon),
                m_keys.get(), m_pi.get(), m_mass.get() + at, m_scratch.get());
            gp.noise = float(m_p->gumbelScale);
            const k::TopKParams tp =
                k::topKParams(m_keys.get(), m, g, m_sel.get(), m_fg.get() + at,
                              deviceFounders ? m_founderOf.get() + at : nullptr);
            k::gumbelTopK(gp, tp, version(k::Kernel::Gumbel), m_stream);
            if (!deviceFounders) { // basic top-K: the founders' map is built on the host
                std::vector<int> fg(std::size_t(g), 0), founderOf(std::size_t(m), -1);
                QMPP_CUDA_CHECK(cudaMemcpyAsync(fg.data(), m_fg.get() + at, fg.size() * 4,
                                                cudaMemcpyDeviceToHost, m_stream));
                QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
                for (int c = 0; c < g; ++c)
                    founderOf[std::size_t(fg[std::size_t(c)])] = c;
                QMPP_CUDA_CHECK(cudaMemcpyAsync(m_founderOf.get() + at, founderOf.data(),
                                                founderOf.size() * 4, cudaMemcpyHostToDevice,
                                                m_stream));
                QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream)); // founderOf is on the stack
            }
            k::stepWeights(m_mass.get() + at, countsOf(b), m_w.get() + at, m, m_stream);
            if (m_out.mass)
                copy(m_out.mass + at + m_in->keepFirst, m_mass.get() + at, std::size_t(m) * 4);
        }
    }

    void cluster() override {
        const i64 dm = m_in->metric && m_in->metricDim ? m_in->metricDim : m_in->d;
        for (i64 b = 0; b < m_in->b; ++b) {
            const int m = mergeable(b), g = groups(b), d = int(dm);
            const i64 at = b * m_in->n;
            const void* x = metricOf(b, dm);
            m_centres.resize(std::size_t(g) * d);
            if (m_prec == k::Prec::F16) m_centres16.resize(2 * std::size_t(g) * d);
            m_assignPart.resize(k::assignPartialBytes(m, d, g));
            m_labels2.resize(m);
            int* labels = m_labels.get() + at;
            auto centresFrom = [&](const int* founders, const int* lab) {
                k::CentresParams cp =
                    k::centresParams(x, m, d, g, lab, m_w.get() + at, m_centres.get());
                cp.founders = founders;
                k::centres(cp, version(k::Kernel::Centres), m_prec, m_stream);
            };
            auto assignTo = [&](int* out) {
                const k::AssignParams ap =
                    k::assignParams(x, m, d, g, m_centres.get(), m_founderOf.get() + at, out,
                                    m_centres16.get(), m_assignPart.get());
                k::assign(ap, version(k::Kernel::Assign), m_prec, m_stream);
            };
            centresFrom(m_fg.get() + at, nullptr);
            assignTo(labels);
            // every round runs: a converged round reproduces its labels exactly
            for (int round = 0; round < m_p->refine; ++round) {
                centresFrom(nullptr, labels);
                assignTo(m_labels2.get());
                copy(labels, m_labels2.get(), std::size_t(m) * 4);
            }
        }
    }

    void merge() override {
        const int D = int(m_in->d), p = int(m_in->keepFirst);
        for (i64 b = 0; b < m_in->b; ++b) {
            const int m = mergeable(b), g = groups(b);
            const i64 at = b * m_in->n;
            for (auto* buf : {&m_first, &m_rank, &m_sizes})
                buf->resize(g);
            m_merged.resize(std::size_t(g) * D);
            m_order.resize(m);
            const auto* x = static_cast<const char*>(m_in->x) + std::size_t(at + p) * D * m_elem;
            int* labels = m_labels.get() + at;
            const k::MergeParams mp =
                k::mergeParams(x, m, D, g, m_w.get() + at, labels, m_first.get(), m_rank.get(),
                               m_merged.get(), m_sizes.get(), m_order.get());
            k::merge(mp, version(k::Kernel::Merge), m_prec, m_stream);
            // item b's output: the kept-first rows, then the merged ones
            float* counts = m_out.counts + b * m_kMax;
            std::int32_t* outLabels = m_out.labels + at;
            k::stepFront(outLabels, counts, m_in->counts ? m_in->counts + at : nullptr, p,
                         m_stream);
            k::stepGroupCounts(labels, countsOf(b), m, counts + p, m_stream);
            k::stepShiftLabels(labels, outLabels + p, m, p, m_stream);
            char* merged = static_cast<char*>(m_out.merged) + std::size_t(b * m_kMax) * D * m_elem;
            copy(merged, static_cast<const char*>(m_in->x) + std::size_t(at) * D * m_elem,
                 std::size_t(p) * D * m_elem);
            if (m_prec == k::Prec::F16)
                k::toHalf(m_merged.get(), merged + std::size_t(p) * D * 2, std::size_t(g) * D,
                          m_stream);
            else
                copy(merged + std::size_t(p) * D * 4, m_merged.get(), std::size_t(g) * D * 4);
        }
    }

    // The baselines are CPU algorithms: the batch comes home, runs there, and goes back.
    void baseline() override {
        if (m_prec != k::Prec::F32)
            throw UsageError(std::string("merge step: ") + toString(m_p->method) +
                             " on the device takes FP32 tokens");
        const std::size_t B = std::size_t(m_in->b), N = std::size_t(m_in->n),
                          D = std::size_t(m_in->d), K = std::size_t(m_kMax);
        const std::size_t dm = m_in->metric && m_in->metricDim ? m_in->metricDim : D;
        std::vector<float> x(B * N * D), metric(m_in->metric ? B * N * dm : 0), counts, sal, ent;
        QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
        auto down = [&](std::vector<float>& v, const void* src, std::size_t count) {
            v.resize(count);
            QMPP_CUDA_CHECK(cudaMemcpy(v.data(), src, count * 4, cudaMemcpyDeviceToHost));
        };
        down(x, m_in->x, x.size());
        if (m_in->metric) down(metric, m_in->metric, metric.size());
        if (m_in->counts) down(counts, m_in->counts, B * N);
        if (m_in->saliency) down(sal, m_in->saliency, B * N);
        if (m_in->entropy) down(ent, m_in->entropy, B * N);
        TokenBatch host = *m_in;
        host.memory = Memory::Host;
        host.x = x.data();
        host.metric = m_in->metric ? metric.data() : nullptr;
        host.counts = m_in->counts ? counts.data() : nullptr;
        host.saliency = m_in->saliency ? sal.data() : nullptr;
        host.entropy = m_in->entropy ? ent.data() : nullptr;
        std::vector<float> merged(B * K * D), outCounts(B * K), outSal(B * N);
        std::vector<std::int32_t> labels(B * N);
        StepOutput out{merged.data(), outCounts.data(), labels.data(),
                       m_out.saliency ? outSal.data() : nullptr, nullptr};
        if (!m_cpu) m_cpu = makeCpuBatchStages();
        mergeStep(*m_cpu, host, *m_p, out);
        auto up = [&](void* dst, const void* src, std::size_t bytes) {
            QMPP_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
        };
        up(m_out.merged, merged.data(), merged.size() * 4);
        up(m_out.counts, outCounts.data(), outCounts.size() * 4);
        up(m_out.labels, labels.data(), labels.size() * 4);
        if (m_out.saliency) up(m_out.saliency, outSal.data(), outSal.size() * 4);
    }

    void finish() override { QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream)); }

  private:
    k::Version version(k::Kernel kern) const {
        return m_optimized && k::available(kern, k::Version::Optimized) ? k::Version::Optimized
                                                                        : k::Version::Basic;
    }
    int mergeable(i64 b) const { return int(m_in->itemTokens(b) - m_in->keepFirst); }
    int groups(i64 b) const { return int(m_p->k[std::size_t(b)] - m_in->keepFirst); }
    const float* countsOf(i64 b) const {
        return m_in->counts ? m_in->counts + b * m_in->n + m_in->keepFirst : nullptr;
    }
    const void* metricOf(i64 b, i64 dm) const {
        const void* base = m_in->metric ? m_in->metric : m_in->x;
        return static_cast<const char*>(base) +
               std::size_t(b * m_in->n + m_in->keepFirst) * std::size_t(dm) * m_elem;
    }
    void copy(void* dst, const void* src, std::size_t bytes) {
        if (bytes)
            QMPP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, m_stream));
    }

    bool m_optimized;
    cudaStream_t m_stream = nullptr;
    const TokenBatch* m_in = nullptr;
    const StepParams* m_p = nullptr;
    StepOutput m_out;
    i64 m_kMax = 0;
    k::Prec m_prec = k::Prec::F32;
    std::size_t m_elem = 4;
    std::unique_ptr<BatchStages> m_cpu;
    DeviceBuffer<float> m_s, m_w, m_mass, m_u, m_keys, m_pi, m_scratch, m_minmax, m_centres,
        m_merged;
    DeviceBuffer<std::uint16_t> m_centres16;
    DeviceBuffer<std::uint8_t> m_assignPart;
    DeviceBuffer<int> m_labels, m_labels2, m_fg, m_founderOf, m_sel, m_first, m_rank, m_sizes,
        m_order;
};

} // namespace

std::unique_ptr<BatchStages> makeCudaBatchStages(bool optimized) {
    return std::make_unique<CudaBatchStages>(optimized);
}

} // namespace qmpp
