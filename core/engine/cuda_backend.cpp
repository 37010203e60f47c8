// The CUDA stages: every step of engine.cpp as kernels on one stream.
// Device buffers persist between runs (they only grow), so the live slider loop allocates once.
#include "qmpp/cuda_backend.h"
#include "cuda_staging.h"
#include "qmpp/array.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "qmpp/stages.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"
#include "qmpp/kernels/params.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace qmpp {

namespace k = kernels;
using k::DeviceBuffer;
using staging::CachedGraph;
using staging::Download;
using staging::keyOf;
using staging::uploadStaged;

namespace {

class CudaStages final : public Stages {
  public:
    CudaStages(bool optimized, Precision precision)
        : m_optimized(optimized),
          m_prec(precision == Precision::FP16 ? k::Prec::F16 : k::Prec::F32) {
        const k::DeviceInfo info = k::deviceInfo(0);
        m_device = info.name + " (sm_" + std::to_string(info.major) + std::to_string(info.minor) +
                   ", " + std::to_string(info.smCount) + " SMs)";
        QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
    }
    ~CudaStages() override { QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(m_stream)); }

    std::string name() const override { return m_optimized ? "cuda" : "cuda-basic"; }
    std::string device() const override { return m_device; }
    bool supports(const MergeParams& p, std::string& why) const override {
        if (p.method == Method::QuickMerge) return true;
        why = std::string("--method ") + toString(p.method) + " ran on the CPU backend";
        return false; // the baselines are CPU algorithms
    }

    void begin(const TokenSet& t, const MergeParams& p, i64 k, MergeResult& r) override;
    void saliency(MergeResult& r) override;
    void mask(MergeResult& r) override;
    void cluster(MergeResult& r) override;
    void merge(MergeResult& r) override;
    void baseline(MergeResult&) override {
        throw RuntimeFailure("the CUDA stages run no baseline (supports() says so)");
    }
    void arLoss(const ArHeads& heads, MergeResult& r) override;
    void metrics(MergeResult& r) override;
    void finish(MergeResult& r) override;

  private:
    k::Version version(k::Kernel kern) const {
        return m_optimized && k::available(kern, k::Version::Optimized) ? k::Version::Optimized
                                                                        : k::Version::Basic;
    }
    // Token-like data in the working precision (FP16 converted on the host, half the bytes over
    // the link), through its own page-locked staging buffer.
    const void* stage(DeviceBuffer<float>& f32, DeviceBuffer<std::uint16_t>& f16,
                      k::PinnedBuffer& pin, const float* host, std::size_t count) {
        if (m_prec == k::Prec::F32) {
            f32.resize(count);
            uploadStaged(host, count, f32.get(), false, pin, m_stream);
            return f32.get();
        }
        f16.resize(count);
        uploadStaged(host, count, f16.get(), true, pin, m_stream);
        return f16.get();
    }
    // The device copy in the working precision when it already holds `count` values of revision
    // `rev` (non-zero, and the last one staged there); null when it must be uploaded.
    const void* kept(std::uint64_t rev, std::uint64_t held, std::size_t count,
                     const DeviceBuffer<float>& f32, const DeviceBuffer<std::uint16_t>& f16) const {
        const bool half = m_prec == k::Prec::F16;
        if (rev == 0 || rev != held || count != (half ? f16.size() : f32.size())) return nullptr;
        return half ? static_cast<const void*>(f16.get()) : f32.get();
    }
    // Queues one stage on the stream and marks its end; the times are read after the final sync.
    template <class F> void timed(const char* stageName, F&& f) {
        f();
        m_line.mark(stageName, m_stream);
    }
    void clusterSeeded();

    bool m_optimized;
    k::Prec m_prec;
    std::string m_device;
    cudaStream_t m_stream = nullptr;
    k::StageTimeline m_line;
    k::PinnedBuffer m_pinX, m_pinSrc, m_pinW, m_pinOut; // staging: each upload has its own
    DeviceBuffer<std::uint8_t> m_packed;                // the results, gathered for one copy
    CachedGraph m_clusterGraph, m_arGraph;              // the stages with many small launches
    std::uint64_t m_srcRevision = 0; // the token set whose hidden states m_src holds
    std::uint64_t m_xRevision = 0;   // the token set whose tokens m_x / m_x16 hold

    DeviceBuffer<float> m_x, m_src, m_h, m_s, m_u, m_keys, m_pi, m_mass, m_minmax, m_scratch;
    DeviceBuffer<float> m_padErr, m_centres, m_merged, m_means, m_hidden, m_err, m_terms, m_mnorm,
        m_w32;
    DeviceBuffer<std::uint16_t> m_x16, m_src16, m_w16;
    DeviceBuffer<std::uint8_t> m_work,
        m_assignPart;                        // optimized entropy's and assignment's partials
    DeviceBuffer<std::uint16_t> m_centres16; // optimized FP16 assignment: centres as two halves
    DeviceBuffer<int> m_sel, m_idx, m_founderOf, m_labels, m_labels2, m_changed, m_first, m_rank,
        m_sizes, m_state, m_order;
    const ArHeads* m_headsFor = nullptr; // the heads whose weights m_w32/m_w16 hold
    k::Prec m_headsPrec = k::Prec::F32;

    // One run's state, from begin() to finish().
    struct Run {
        const TokenSet* t = nullptr;
        const MergeParams* p = nullptr;
        int n = 0, d = 0, k = 0;
        const void* x = nullptr;     // the tokens on the device, in the working precision
        bool deviceFounders = false; // the optimized top-K writes founderOf itself
        bool hostFounders = false;   // founders built on the host (basic top-K)
        bool usedState = false;      // device-side refinement: rounds come back with the results
        int stateHead[2] = {0, 0};
        int refineRounds = 0; // basic kernels: refinements run before convergence
        std::vector<int> fg;  // the foreground [K]
        std::size_t m1 = 0;   // K - 1 positions of the AR errors
        std::chrono::steady_clock::time_point wall0;
    } m_run;
};

void CudaStages::begin(const TokenSet& t, const MergeParams& p, i64 kk, MergeResult& r) {
    m_run = Run{};
    Run& u = m_run;
    u.wall0 = std::chrono::steady_clock::now();
    u.t = &t;
    u.p = &p;
    u.n = static_cast<int>(t.n);
    u.d = static_cast<int>(t.d);
    u.k = static_cast<int>(kk);
    r.n = t.n;
    r.d = t.d;
    r.k = kk;
    r.backend = name();
    r.device = m_device;
    r.precision = k::precName(m_prec);

    m_line.begin(m_stream);
    // upload: the tokens (kept on the device across runs of one revision), and the uniforms of
    // the Gumbel noise (drawn on the device, or given)
    timed("upload", [&] {
        u.x = kept(t.revision, m_xRevision, t.x.size(), m_x, m_x16);
        if (!u.x) {
            m_xRevision = 0; // until the upload has been queued
            u.x = stage(m_x, m_x16, m_pinX, t.x.data(), t.x.size());
            m_xRevision = t.revision;
        }
        m_u.resize(t.n);
        if (p.uniforms.empty())
            k::philoxUniforms(m_u.get(), t.n, p.seed, m_stream);
        else
            m_u.upload(p.uniforms.data(), p.uniforms.size(), m_stream);
    });
    // hidden states: reported apart, and kept on the device across runs of one revision
    const bool hiddenResident =
        kept(t.revision, m_srcRevision, t.hidden.size(), m_src, m_src16) != nullptr;
    if (!t.hidden.empty() && t.attention.empty() && !hiddenResident) {
        m_srcRevision = 0; // until the upload has been queued
        timed("upload_hidden",
              [&] { stage(m_src, m_src16, m_pinSrc, t.hidden.data(), t.hidden.size()); });
        m_srcRevision = t.revision;
    }
    if (!t.attention.empty()) m_srcRevision = 0; // m_src will hold the maps
}

void CudaStages::saliency(MergeResult& r) {
    const Run& u = m_run;
    const TokenSet& t = *u.t;
    timed("entropy", [&] {
        if (!t.attention.empty()) {
            r.layers = t.attnLayers;
            m_h.resize(t.attnLayers * t.n);
            const void* a = stage(m_src, m_src16, m_pinSrc, t.attention.data(), t.attention.size());
            k::entropyMaps(k::entropyMapsParams(a, static_cast<int>(t.attnLayers),
                                                static_cast<int>(t.attnHeads), u.n, m_h.get()),
                           version(k::Kernel::EntropyMaps), m_prec, m_stream);
            r.saliencySource = "attention maps (L=" + std::to_string(t.attnLayers) +
                               ", H=" + std::to_string(t.attnHeads) + ")";
            return;
        }
        // hidden states: L sources of one scale (beta = 1/sqrt(D)); tokens: one source, L scales
        const bool hidden = !t.hidden.empty();
        r.layers = hidden ? t.hiddenLayers : u.p->layers;
        const std::vector<double> betas = multiScaleBetas(hidden ? 1 : u.p->layers, u.d);
        const std::vector<float> beta(betas.begin(), betas.end());
        const void* src = !hidden                  ? u.x
                          : m_prec == k::Prec::F16 ? static_cast<const void*>(m_src16.get())
                                                   : m_src.get();
        m_h.resize(r.layers * t.n);
        k::EntropyGramParams gp =
            k::entropyGramParams(src, hidden ? static_cast<int>(t.hiddenLayers) : 1, u.n, u.d,
                                 beta.data(), static_cast<int>(beta.size()), m_h.get());
        r.saliencySource =
            hidden ? "hidden states (L=" + std::to_string(t.hiddenLayers) + ")"
                   : "tokens, multi-scale self-attention (L=" + std::to_string(u.p->layers) + ")";
        const k::Version v = version(k::Kernel::EntropyGram);
        gp.workBytes = k::entropyGramWorkBytes(gp, v, m_prec);
        m_work.resize(gp.workBytes);
        gp.work = m_work.get();
        k::entropyGram(gp, v, m_prec, m_stream);
    });
    timed("saliency", [&] {
        m_minmax.resize(2 * r.layers);
        m_s.resize(t.n);
        k::saliency(k::saliencyParams(m_h.get(), static_cast<int>(r.layers), u.n, m_minmax.get(),
                                      m_s.get()),
                    version(k::Kernel::Saliency), m_stream);
    });
}

// Gumbel-softmax mask, hard foreground and mass; the top-K in the same launch (optimized), which
// also writes founderOf; with basic kernels the founders are built on the host.
void CudaStages::mask(MergeResult&) {
    Run& u = m_run;
    const MergeParams& p = *u.p;
    u.deviceFounders = version(k::Kernel::TopK) == k::Version::Optimized;
    m_founderOf.resize(u.n);
    timed("gumbel", [&] {
        for (auto* b : {&m_keys, &m_pi, &m_mass})
            b->resize(u.n);
        m_scratch.resize(2);
        m_sel.resize(u.n);
        m_idx.resize(u.k);
        const k::GumbelParams gp = k::gumbelParams(
            m_s.get(), m_u.get(), u.n, static_cast<float>(p.temperature),
            static_cast<float>(p.epsilon), m_keys.get(), m_pi.get(), m_mass.get(), m_scratch.get());
        const k::TopKParams tp = k::topKParams(m_keys.get(), u.n, u.k, m_sel.get(), m_idx.get(),
                                               u.deviceFounders ? m_founderOf.get() : nullptr);
        k::gumbelTopK(gp, tp, version(k::Kernel::Gumbel), m_stream); // one launch when optimized
    });
    u.fg.assign(static_cast<std::size_t>(u.k), 0);
    // Founders built on the host need the foreground now; otherwise it comes with the results.
    u.hostFounders = p.cluster == ClusterMethod::Seeded && !u.deviceFounders;
    if (u.hostFounders) {
        m_idx.download(u.fg.data(), u.fg.size(), m_stream);
        QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
    }
}

void CudaStages::cluster(MergeResult& r) {
    const Run& u = m_run;
    const TokenSet& t = *u.t;
    m_labels.resize(u.n);
    if (u.p->cluster == ClusterMethod::Seeded) return clusterSeeded();
    // The exact methods are CPU algorithms (O(N^2) memory); their labels come back up. The
    // stage's time spans the CPU work (the stream waits for the labels).
    timed("cluster", [&] {
        std::vector<i64> groups = u.p->cluster == ClusterMethod::Agglomerative
                                      ? clusterAgglomerative(t.x.data(), t.n, t.d, u.k)
                                      : clusterReference(t.x.data(), t.n, t.d, u.k);
        std::vector<int> g32(groups.begin(), groups.end());
        m_labels.upload(g32.data(), g32.size(), m_stream);
    });
    r.notes.push_back(std::string("--cluster ") + toString(u.p->cluster) + " ran on the CPU");
}

// Seeded clustering: founders' centres, assignment, then `refine` rounds of centres and
// reassignment. Optimized, every round is queued and a converged round turns the rest into
// no-ops, with no host round trip; basic kernels check convergence on the host each round.
void CudaStages::clusterSeeded() {
    Run& u = m_run;
    const int n = u.n, d = u.d, K = u.k, refine = u.p->refine;
    if (u.hostFounders) {
        std::vector<int> founderOf(static_cast<std::size_t>(n), -1);
        for (int c = 0; c < K; ++c)
            founderOf[u.fg[c]] = c;
        m_founderOf.upload(founderOf.data(), founderOf.size(), m_stream);
    }
    m_centres.resize(std::size_t(K) * d);
    if (m_prec == k::Prec::F16) m_centres16.resize(2 * std::size_t(K) * d);
    m_assignPart.resize(k::assignPartialBytes(n, d, K));
    const bool deviceRefine = version(k::Kernel::Assign) == k::Version::Optimized &&
                              version(k::Kernel::Centres) == k::Version::Optimized;
    m_state.resize(2 + std::max(refine, 0));
    auto centresFrom = [&](const int* founders, const int* labels) {
        k::CentresParams cp = k::centresParams(u.x, n, d, K, labels, m_mass.get(), m_centres.get());
        cp.founders = founders;
        cp.skip = deviceRefine ? m_state.get() : nullptr;
        k::centres(cp, version(k::Kernel::Centres), m_prec, m_stream);
    };
    auto assignTo = [&](int* out, const int* previous, int* changed) {
        k::AssignParams ap = k::assignParams(u.x, n, d, K, m_centres.get(), m_founderOf.get(), out,
                                             m_centres16.get(), m_assignPart.get());
        ap.previous = previous;
        ap.changed = changed;
        ap.skip = deviceRefine ? m_state.get() : nullptr;
        k::assign(ap, version(k::Kernel::Assign), m_prec, m_stream);
    };
    m_labels2.resize(n);
    m_changed.resize(1);
    timed("cluster", [&] {
        if (deviceRefine) {
            u.usedState = true;
            const std::string key =
                keyOf(n, d, K, refine, u.x, m_idx.get(), m_mass.get(), m_centres.get(),
                      m_centres16.get(), m_assignPart.get(), m_state.get(), m_founderOf.get(),
                      m_labels.get(), m_labels2.get());
            m_clusterGraph.run(key, m_stream, [&] {
                m_state.fillBytes(0, m_stream);
                centresFrom(m_idx.get(), nullptr);
                assignTo(m_labels.get(), nullptr, nullptr);
                for (int round = 0; round < refine; ++round) {
                    centresFrom(nullptr, m_labels.get());
                    assignTo(m_labels2.get(), m_labels.get(), m_state.get() + 2 + round);
                    k::refineCommit(m_state.get(), round, m_labels.get(), m_labels2.get(), n,
                                    m_stream);
                }
            });
            return;
        }
        centresFrom(m_idx.get(), nullptr);
        assignTo(m_labels.get(), nullptr, nullptr);
        for (int round = 0; round < refine; ++round) {
            u.refineRounds = round + 1;
            centresFrom(nullptr, m_labels.get());
            m_changed.fillBytes(0, m_stream);
            assignTo(m_labels2.get(), m_labels.get(), m_changed.get());
            std::swap(m_labels, m_labels2);
            int changed = 0;
            m_changed.download(&changed, 1, m_stream);
            QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
            if (changed == 0) break; // converged
        }
    });
}

void CudaStages::merge(MergeResult&) {
    const Run& u = m_run;
    timed("merge", [&] {
        for (auto* b : {&m_first, &m_rank, &m_sizes})
            b->resize(u.k);
        m_merged.resize(std::size_t(u.k) * u.d);
        m_order.resize(u.n);
        const k::MergeParams mp =
            k::mergeParams(u.x, u.n, u.d, u.k, m_mass.get(), m_labels.get(), m_first.get(),
                           m_rank.get(), m_merged.get(), m_sizes.get(), m_order.get());
        k::merge(mp, version(k::Kernel::Merge), m_prec, m_stream);
    });
}

// The AR heads' per-position errors (weights uploaded once per heads object and precision).
void CudaStages::arLoss(const ArHeads& heads, MergeResult&) {
    Run& u = m_run;
    const std::size_t hd = ArHeads::kHidden, D = static_cast<std::size_t>(u.d);
    if (m_headsFor != &heads || m_headsPrec != m_prec) {
        const std::vector<float> all = packArHeads(heads);
        stage(m_w32, m_w16, m_pinW, all.data(), all.size());
        m_headsFor = &heads;
        m_headsPrec = m_prec;
    }
    u.m1 = u.k > 1 ? static_cast<std::size_t>(u.k - 1) : 0;
    timed("ar_heads", [&] {
        m_means.resize(std::max<std::size_t>(1, 2 * u.m1 * D));
        m_hidden.resize(std::max<std::size_t>(1, 2 * u.m1 * hd));
        m_err.resize(std::max<std::size_t>(1, 2 * u.m1));
        const void* w =
            m_prec == k::Prec::F16 ? static_cast<const void*>(m_w16.get()) : m_w32.get();
        const k::ArParams ap = k::arParams(m_merged.get(), u.k, u.d, w, m_prec, m_means.get(),
                                           m_hidden.get(), m_err.get());
        const std::string key = keyOf(u.k, u.d, ap.merged, ap.w1[0], ap.means, ap.hidden, ap.err);
        m_arGraph.run(key, m_stream,
                      [&] { k::arHeads(ap, version(k::Kernel::ArHeads), m_prec, m_stream); });
    });
}

// Per-token terms of the metrics and the fidelity loss's rows, summed on the host in finish().
void CudaStages::metrics(MergeResult&) {
    const Run& u = m_run;
    timed("metrics", [&] {
        m_terms.resize(4 * std::size_t(u.n));
        m_mnorm.resize(u.k);
        m_padErr.resize(u.n);
        const k::MetricsParams mp =
            k::metricsParams(u.x, u.n, u.d, u.k, m_labels.get(), m_merged.get(), m_terms.get(),
                             m_mnorm.get(), m_padErr.get());
        k::metrics(mp, version(k::Kernel::Metrics), m_prec, m_stream);
    });
}

void CudaStages::finish(MergeResult& r) {
    Run& u = m_run;
    const TokenSet& t = *u.t;
    const int n = u.n, K = u.k;
    const std::size_t m1 = u.m1;
    std::vector<float> terms(4 * static_cast<std::size_t>(n)), mnorm(static_cast<std::size_t>(K));
    std::vector<int> labels(static_cast<std::size_t>(n)), gsizes(static_cast<std::size_t>(K));
    std::vector<float> padErr(static_cast<std::size_t>(n)), err(2 * m1);
    Download down;
    timed("download", [&] {
        r.layerEntropy.resize(r.layers * t.n);
        for (auto* v : {&r.saliency, &r.uniforms, &r.pi, &r.mass})
            v->resize(t.n);
        r.merged.resize(std::size_t(K) * t.d);
        down.add(m_h, r.layerEntropy.data(), r.layerEntropy.size());
        down.add(m_s, r.saliency.data(), t.n);
        down.add(m_u, r.uniforms.data(), t.n);
        down.add(m_pi, r.pi.data(), t.n);
        down.add(m_mass, r.mass.data(), t.n);
        down.add(m_labels, labels.data(), labels.size());
        down.add(m_merged, r.merged.data(), r.merged.size());
        down.add(m_sizes, gsizes.data(), gsizes.size());
        if (m1) down.add(m_err, err.data(), err.size());
        down.add(m_terms, terms.data(), terms.size());
        down.add(m_mnorm, mnorm.data(), mnorm.size());
        down.add(m_padErr, padErr.data(), padErr.size());
        if (!u.hostFounders) down.add(m_idx, u.fg.data(), u.fg.size());
        if (u.usedState) down.add(m_state, &u.stateHead[0], 2);
        down.run(m_packed, m_pinOut, m_stream);
    });
    QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
    const auto synced = std::chrono::steady_clock::now();
    down.finish();
    const auto copied = std::chrono::steady_clock::now();
    using Ms = std::chrono::duration<double, std::milli>;
    for (const auto& [stageName, ms] : m_line.resolve())
        r.timings.push_back({stageName, ms});
    r.foreground.assign(u.fg.begin(), u.fg.end());
    r.refineRounds = u.usedState ? u.stateHead[1] : u.refineRounds;
    for (auto& v : r.uniforms)
        v = std::min(std::max(v, 1e-7f), 1.0f - 1e-7f);
    r.labels.assign(labels.begin(), labels.end());
    r.groupSizes.assign(gsizes.begin(), gsizes.end());

    // Losses and metrics from the device's per-position and per-token terms, summed in double.
    r.metrics.arErrorForward.assign(err.begin(), err.begin() + m1);
    r.metrics.arErrorBackward.assign(err.begin() + m1, err.end());
    for (std::size_t i = 0; i < m1; ++i) {
        r.losses.arForward += err[i] / double(m1);
        r.losses.arBackward += err[m1 + i] / double(m1);
    }
    r.losses.ar = r.losses.arForward + r.losses.arBackward;
    MetricSums sums;
    sums.norms.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        sums.err2 += terms[4 * i];
        sums.x2 += terms[4 * i + 1];
        sums.cosSum += terms[4 * i + 2];
        sums.norms[i] = terms[4 * i + 3];
    }
    sums.mergedNorms.assign(mnorm.begin(), mnorm.end());
    finishMetrics(sums, *u.p, r);
    const std::vector<double> rowErr(padErr.begin(), padErr.end());
    r.losses.fidelity =
        fidelityLossFromRows(rowErr.data(), t.n, t.d, sums.x2, r.metrics.normMassTopK);
    // host time after the device finished: the results copied out, then summarized
    r.timings.push_back({"copy_out", Ms(copied - synced).count()});
    r.timings.push_back({"summaries", Ms(std::chrono::steady_clock::now() - copied).count()});
    r.timings.push_back({"total", Ms(std::chrono::steady_clock::now() - u.wall0).count()});
}

} // namespace

std::unique_ptr<Backend> makeCudaBackend(bool optimized, Precision precision) {
    return makeStagedBackend(std::make_unique<CudaStages>(optimized, precision));
}

} // namespace qmpp
