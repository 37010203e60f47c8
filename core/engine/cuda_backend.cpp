// The CUDA stages: every step of engine.cpp as kernels on one stream.
// Device buffers persist between runs (they only grow), so the live slider loop allocates once.
#include "qmpp/cuda_backend.h"
#include "qmpp/array.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "qmpp/stages.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qmpp {

namespace k = kernels;
using k::DeviceBuffer;

namespace {

// float -> IEEE half, round to nearest even (as __float2half_rn): F16C eight at a time where the
// CPU has it, else floatToHalf.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void toHalfF16c(const float* in, std::uint16_t* out,
                                                    std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i)
        out[i] = floatToHalf(in[i]);
}
#endif
void toHalfHost(const float* in, std::uint16_t* out, std::size_t n) {
#if defined(__x86_64__)
    static const bool f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    if (f16c) return toHalfF16c(in, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i)
        out[i] = floatToHalf(in[i]);
}

// Host floats to device memory in T through page-locked staging: chunks are copied (or
// converted to half) by all cores, and each chunk's DMA overlaps the next chunk's conversion.
void uploadStaged(const float* host, std::size_t count, void* dev, bool half, k::PinnedBuffer& pin,
                  cudaStream_t s) {
    if (count == 0) return;
    const std::size_t es = half ? 2 : 4;
    auto* staging = static_cast<unsigned char*>(pin.reserve(count * es));
    constexpr std::size_t kChunk = std::size_t(1) << 19, kPiece = std::size_t(1) << 15; // elements
    for (std::size_t c0 = 0; c0 < count; c0 += kChunk) {
        const std::size_t cn = std::min(kChunk, count - c0);
        const long long pieces = static_cast<long long>((cn + kPiece - 1) / kPiece);
#pragma omp parallel for schedule(static) if (pieces > 1)
        for (long long q = 0; q < pieces; ++q) {
            const std::size_t b = c0 + std::size_t(q) * kPiece, e = std::min(b + kPiece, c0 + cn);
            if (half)
                toHalfHost(host + b, reinterpret_cast<std::uint16_t*>(staging) + b, e - b);
            else
                std::memcpy(reinterpret_cast<float*>(staging) + b, host + b, (e - b) * 4);
        }
        QMPP_CUDA_CHECK(cudaMemcpyAsync(static_cast<unsigned char*>(dev) + c0 * es,
                                        staging + c0 * es, cn * es, cudaMemcpyHostToDevice, s));
    }
}

// Results gathered on the device into one buffer, one DMA into page-locked memory, then copied
// out to their vectors by all cores.
class Download {
  public:
    template <class T> void add(const DeviceBuffer<T>& src, T* host, std::size_t count) {
        if (!count) return;
        m_segs.push_back({src.get(), count * sizeof(T), m_bytes});
        m_hosts.push_back(host);
        m_bytes += (count * sizeof(T) + 15) / 16 * 16;
    }
    void run(DeviceBuffer<std::uint8_t>& packed, k::PinnedBuffer& pin, cudaStream_t s) {
        packed.resize(std::max<std::size_t>(m_bytes, 1));
        m_pinned = static_cast<unsigned char*>(pin.reserve(m_bytes));
        for (std::size_t b = 0; b < m_segs.size(); b += k::kMaxPack)
            k::pack(m_segs.data() + b, int(std::min<std::size_t>(k::kMaxPack, m_segs.size() - b)),
                    packed.get(), s);
        if (m_bytes)
            QMPP_CUDA_CHECK(
                cudaMemcpyAsync(m_pinned, packed.get(), m_bytes, cudaMemcpyDeviceToHost, s));
    }
    // After the stream is synchronized.
    void finish() const {
        constexpr std::size_t kPiece = std::size_t(1) << 16;
        std::vector<std::pair<std::size_t, std::size_t>> work; // (segment, piece start)
        for (std::size_t i = 0; i < m_segs.size(); ++i)
            for (std::size_t b = 0; b < m_segs[i].bytes; b += kPiece)
                work.emplace_back(i, b);
        const long long jobs = static_cast<long long>(work.size());
#pragma omp parallel for schedule(dynamic) if (jobs > 8)
        for (long long j = 0; j < jobs; ++j) {
            const auto [i, b] = work[std::size_t(j)];
            const std::size_t len = std::min(kPiece, m_segs[i].bytes - b);
            std::memcpy(static_cast<unsigned char*>(m_hosts[i]) + b,
                        m_pinned + m_segs[i].offset + b, len);
        }
    }

  private:
    std::vector<k::PackSegment> m_segs;
    std::vector<void*> m_hosts;
    std::size_t m_bytes = 0;
    unsigned char* m_pinned = nullptr;
};

bool graphsEnabled() {
    static const bool on = [] {
        const char* e = std::getenv("QMPP_CUDA_GRAPHS");
        return !(e && std::string(e) == "0");
    }();
    return on;
}

// A cache key from sizes and buffer addresses.
std::string keyPart(long long v) {
    return std::to_string(v);
}
std::string keyPart(const void* p) {
    return std::to_string(reinterpret_cast<std::uintptr_t>(p));
}
template <class... A> std::string keyOf(const A&... a) {
    std::string key;
    ((key += keyPart(a) + ","), ...);
    return key;
}

// One stage's launches as a CUDA graph, cached by a key of everything they depend on (shapes,
// buffer addresses, parameters): the second run with a key captures them, later runs with it
// relaunch the graph, which saves the host's per-launch cost (many small kernels at small N).
class CachedGraph {
  public:
    CachedGraph() = default;
    ~CachedGraph() { reset(); }
    CachedGraph(const CachedGraph&) = delete;
    CachedGraph& operator=(const CachedGraph&) = delete;
    // Enqueues `work` on s, directly or as the cached graph.
    template <class F> void run(const std::string& key, cudaStream_t s, F&& work) {
        if (!graphsEnabled()) return work();
        if (m_exec && key == m_key) {
            QMPP_CUDA_CHECK(cudaGraphLaunch(m_exec, s));
            return;
        }
        if (key != m_seen) { // first sighting: run directly (buffers may still grow)
            m_seen = key;
            return work();
        }
        reset();
        cudaGraph_t g = nullptr;
        QMPP_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        try {
            work();
        } catch (...) {
            if (cudaStreamEndCapture(s, &g) == cudaSuccess && g) cudaGraphDestroy(g);
            throw;
        }
        QMPP_CUDA_CHECK(cudaStreamEndCapture(s, &g));
        const cudaError_t inst = cudaGraphInstantiate(&m_exec, g, 0);
        QMPP_CUDA_CHECK_PRINT(cudaGraphDestroy(g));
        QMPP_CUDA_CHECK(inst);
        m_key = key;
        QMPP_CUDA_CHECK(cudaGraphLaunch(m_exec, s));
    }

  private:
    void reset() noexcept {
        if (m_exec) QMPP_CUDA_CHECK_PRINT(cudaGraphExecDestroy(m_exec));
        m_exec = nullptr;
        m_key.clear();
    }
    cudaGraphExec_t m_exec = nullptr;
    std::string m_key, m_seen;
};

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
            k::EntropyMapsParams ep;
            ep.a = stage(m_src, m_src16, m_pinSrc, t.attention.data(), t.attention.size());
            ep.layers = static_cast<int>(t.attnLayers);
            ep.heads = static_cast<int>(t.attnHeads);
            ep.n = u.n;
            m_h.resize(t.attnLayers * t.n);
            ep.h = m_h.get();
            k::entropyMaps(ep, version(k::Kernel::EntropyMaps), m_prec, m_stream);
            r.saliencySource = "attention maps (L=" + std::to_string(t.attnLayers) +
                               ", H=" + std::to_string(t.attnHeads) + ")";
            return;
        }
        k::EntropyGramParams gp;
        gp.n = u.n;
        gp.d = u.d;
        if (!t.hidden.empty()) {
            r.layers = t.hiddenLayers;
            gp.x = m_prec == k::Prec::F16 ? static_cast<const void*>(m_src16.get()) : m_src.get();
            gp.sources = static_cast<int>(t.hiddenLayers);
            gp.scales = 1;
            gp.beta[0] = static_cast<float>(1.0 / std::sqrt(double(u.d)));
            r.saliencySource = "hidden states (L=" + std::to_string(t.hiddenLayers) + ")";
        } else {
            const int layers = u.p->layers;
            r.layers = layers;
            gp.x = u.x;
            gp.sources = 1;
            gp.scales = layers;
            for (int l = 0; l < layers; ++l)
                gp.beta[l] =
                    static_cast<float>(multiScaleFactor(l, layers) / std::sqrt(double(u.d)));
            r.saliencySource =
                "tokens, multi-scale self-attention (L=" + std::to_string(layers) + ")";
        }
        m_h.resize(r.layers * t.n);
        gp.h = m_h.get();
        const k::Version v = version(k::Kernel::EntropyGram);
        gp.workBytes = k::entropyGramWorkBytes(gp, v, m_prec);
        m_work.resize(gp.workBytes);
        gp.work = m_work.get();
        k::entropyGram(gp, v, m_prec, m_stream);
    });
    timed("saliency", [&] {
        k::SaliencyParams sp;
        sp.h = m_h.get();
        sp.layers = static_cast<int>(r.layers);
        sp.n = u.n;
        m_minmax.resize(2 * r.layers);
        m_s.resize(t.n);
        sp.minmax = m_minmax.get();
        sp.s = m_s.get();
        k::saliency(sp, version(k::Kernel::Saliency), m_stream);
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
        k::GumbelParams gp;
        gp.s = m_s.get();
        gp.u = m_u.get();
        gp.n = u.n;
        gp.tau = static_cast<float>(p.temperature);
        gp.eps = static_cast<float>(p.epsilon);
        for (auto* b : {&m_keys, &m_pi, &m_mass})
            b->resize(u.n);
        m_scratch.resize(2);
        gp.keys = m_keys.get();
        gp.pi = m_pi.get();
        gp.mass = m_mass.get();
        gp.scratch = m_scratch.get();
        k::TopKParams tp;
        tp.keys = m_keys.get();
        tp.n = u.n;
        tp.k = u.k;
        m_sel.resize(u.n);
        m_idx.resize(u.k);
        tp.selected = m_sel.get();
        tp.idx = m_idx.get();
        if (u.deviceFounders) tp.founderOf = m_founderOf.get();
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
        k::CentresParams cp;
        cp.x = u.x;
        cp.n = n;
        cp.d = d;
        cp.k = K;
        cp.founders = founders;
        cp.labels = labels;
        cp.mass = m_mass.get();
        cp.centres = m_centres.get();
        cp.skip = deviceRefine ? m_state.get() : nullptr;
        k::centres(cp, version(k::Kernel::Centres), m_prec, m_stream);
    };
    auto assignTo = [&](int* out, const int* previous, int* changed) {
        k::AssignParams ap;
        ap.x = u.x;
        ap.n = n;
        ap.d = d;
        ap.k = K;
        ap.centres = m_centres.get();
        ap.founderOf = m_founderOf.get();
        ap.labels = out;
        ap.previous = previous;
        ap.changed = changed;
        ap.skip = deviceRefine ? m_state.get() : nullptr;
        ap.centresHalf = m_centres16.get();
        ap.partial = m_assignPart.get();
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
        k::MergeParams mp;
        mp.x = u.x;
        mp.n = u.n;
        mp.d = u.d;
        mp.k = u.k;
        mp.mass = m_mass.get();
        mp.labels = m_labels.get();
        for (auto* b : {&m_first, &m_rank, &m_sizes})
            b->resize(u.k);
        m_merged.resize(std::size_t(u.k) * u.d);
        mp.first = m_first.get();
        mp.rank = m_rank.get();
        mp.merged = m_merged.get();
        mp.sizes = m_sizes.get();
        m_order.resize(u.n);
        mp.order = m_order.get();
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
        k::ArParams ap;
        ap.merged = m_merged.get();
        ap.k = u.k;
        ap.d = u.d;
        k::bindArWeights(
            ap, m_prec == k::Prec::F16 ? static_cast<const void*>(m_w16.get()) : m_w32.get(), u.d,
            m_prec);
        m_means.resize(std::max<std::size_t>(1, 2 * u.m1 * D));
        m_hidden.resize(std::max<std::size_t>(1, 2 * u.m1 * hd));
        m_err.resize(std::max<std::size_t>(1, 2 * u.m1));
        ap.means = m_means.get();
        ap.hidden = m_hidden.get();
        ap.err = m_err.get();
        const std::string key = keyOf(u.k, u.d, ap.merged, ap.w1[0], ap.means, ap.hidden, ap.err);
        m_arGraph.run(key, m_stream,
                      [&] { k::arHeads(ap, version(k::Kernel::ArHeads), m_prec, m_stream); });
    });
}

// Per-token terms of the metrics and the fidelity loss's rows, summed on the host in finish().
void CudaStages::metrics(MergeResult&) {
    const Run& u = m_run;
    timed("metrics", [&] {
        k::MetricsParams mp;
        mp.x = u.x;
        mp.n = u.n;
        mp.d = u.d;
        mp.k = u.k;
        mp.labels = m_labels.get();
        mp.merged = m_merged.get();
        m_terms.resize(4 * std::size_t(u.n));
        m_mnorm.resize(u.k);
        mp.tokenTerms = m_terms.get();
        mp.mergedNorm = m_mnorm.get();
        m_padErr.resize(u.n);
        mp.paddedErr = m_padErr.get();
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
