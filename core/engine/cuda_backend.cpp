// The CUDA backend: the pipeline of pipeline.cpp with every stage as kernels on one stream.
// Device buffers persist between runs (they only grow), so the live slider loop allocates once.
#include "qmpp/cuda_backend.h"
#include "qmpp/array.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"

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

class CudaBackend final : public Backend {
  public:
    CudaBackend(bool optimized, Precision precision)
        : m_optimized(optimized),
          m_prec(precision == Precision::FP16 ? k::Prec::F16 : k::Prec::F32) {
        const k::DeviceInfo info = k::deviceInfo(0);
        m_device = info.name + " (sm_" + std::to_string(info.major) + std::to_string(info.minor) +
                   ", " + std::to_string(info.smCount) + " SMs)";
        QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
    }
    ~CudaBackend() override { QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(m_stream)); }

    std::string name() const override { return m_optimized ? "cuda" : "cuda-basic"; }
    std::string device() const override { return m_device; }
    MergeResult run(const TokenSet& t, const MergeParams& p, i64 kk) override;

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
    template <class F> void timed(MergeResult&, const char* stageName, F&& f) {
        f();
        m_line.mark(stageName, m_stream);
    }

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
};

MergeResult CudaBackend::run(const TokenSet& t, const MergeParams& p, i64 kk) {
    if (p.method != Method::QuickMerge) { // the baselines are CPU algorithms
        MergeResult r = makeCpuBackend()->run(t, p, kk);
        r.notes.push_back(std::string("--method ") + toString(p.method) +
                          " ran on the CPU backend");
        return r;
    }
    const auto wall0 = std::chrono::steady_clock::now();
    const int n = static_cast<int>(t.n), d = static_cast<int>(t.d), K = static_cast<int>(kk);
    MergeResult r;
    r.n = t.n;
    r.d = t.d;
    r.k = kk;
    r.backend = name();
    r.device = m_device;
    r.precision = k::precName(m_prec);

    const void* x = nullptr;
    m_line.begin(m_stream);
    // upload: the tokens (kept on the device across runs of one revision), and the uniforms of
    // the Gumbel noise (drawn on the device, or given)
    timed(r, "upload", [&] {
        x = kept(t.revision, m_xRevision, t.x.size(), m_x, m_x16);
        if (!x) {
            m_xRevision = 0; // until the upload has been queued
            x = stage(m_x, m_x16, m_pinX, t.x.data(), t.x.size());
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
        timed(r, "upload_hidden",
              [&] { stage(m_src, m_src16, m_pinSrc, t.hidden.data(), t.hidden.size()); });
        m_srcRevision = t.revision;
    }
    if (!t.attention.empty()) m_srcRevision = 0; // m_src will hold the maps

    // 1. Saliency from attention entropy.
    timed(r, "entropy", [&] {
        if (!t.attention.empty()) {
            r.layers = t.attnLayers;
            k::EntropyMapsParams ep;
            ep.a = stage(m_src, m_src16, m_pinSrc, t.attention.data(), t.attention.size());
            ep.layers = static_cast<int>(t.attnLayers);
            ep.heads = static_cast<int>(t.attnHeads);
            ep.n = n;
            m_h.resize(t.attnLayers * t.n);
            ep.h = m_h.get();
            k::entropyMaps(ep, version(k::Kernel::EntropyMaps), m_prec, m_stream);
            r.saliencySource = "attention maps (L=" + std::to_string(t.attnLayers) +
                               ", H=" + std::to_string(t.attnHeads) + ")";
            return;
        }
        k::EntropyGramParams gp;
        gp.n = n;
        gp.d = d;
        if (!t.hidden.empty()) {
            r.layers = t.hiddenLayers;
            gp.x = m_prec == k::Prec::F16 ? static_cast<const void*>(m_src16.get()) : m_src.get();
            gp.sources = static_cast<int>(t.hiddenLayers);
            gp.scales = 1;
            gp.beta[0] = static_cast<float>(1.0 / std::sqrt(double(d)));
            r.saliencySource = "hidden states (L=" + std::to_string(t.hiddenLayers) + ")";
        } else {
            r.layers = p.layers;
            gp.x = x;
            gp.sources = 1;
            gp.scales = p.layers;
            for (int l = 0; l < p.layers; ++l)
                gp.beta[l] =
                    static_cast<float>(multiScaleFactor(l, p.layers) / std::sqrt(double(d)));
            r.saliencySource =
                "tokens, multi-scale self-attention (L=" + std::to_string(p.layers) + ")";
        }
        m_h.resize(r.layers * t.n);
        gp.h = m_h.get();
        const k::Version v = version(k::Kernel::EntropyGram);
        gp.workBytes = k::entropyGramWorkBytes(gp, v, m_prec);
        m_work.resize(gp.workBytes);
        gp.work = m_work.get();
        k::entropyGram(gp, v, m_prec, m_stream);
    });
    timed(r, "saliency", [&] {
        k::SaliencyParams sp;
        sp.h = m_h.get();
        sp.layers = static_cast<int>(r.layers);
        sp.n = n;
        m_minmax.resize(2 * r.layers);
        m_s.resize(t.n);
        sp.minmax = m_minmax.get();
        sp.s = m_s.get();
        k::saliency(sp, version(k::Kernel::Saliency), m_stream);
    });

    // 2-3. Gumbel-softmax mask, hard foreground, mass; the top-K in the same launch (optimized).
    // The optimized top-K writes founderOf itself; with basic kernels it is built on the host.
    const bool deviceFounders = version(k::Kernel::TopK) == k::Version::Optimized;
    m_founderOf.resize(t.n);
    timed(r, "gumbel", [&] {
        k::GumbelParams gp;
        gp.s = m_s.get();
        gp.u = m_u.get();
        gp.n = n;
        gp.tau = static_cast<float>(p.temperature);
        gp.eps = static_cast<float>(p.epsilon);
        for (auto* b : {&m_keys, &m_pi, &m_mass})
            b->resize(t.n);
        m_scratch.resize(2);
        gp.keys = m_keys.get();
        gp.pi = m_pi.get();
        gp.mass = m_mass.get();
        gp.scratch = m_scratch.get();
        k::TopKParams tp;
        tp.keys = m_keys.get();
        tp.n = n;
        tp.k = K;
        m_sel.resize(t.n);
        m_idx.resize(kk);
        tp.selected = m_sel.get();
        tp.idx = m_idx.get();
        if (deviceFounders) tp.founderOf = m_founderOf.get();
        k::gumbelTopK(gp, tp, version(k::Kernel::Gumbel), m_stream); // one launch when optimized
    });
    std::vector<int> fg(static_cast<std::size_t>(K));
    bool usedState = false; // device-side refinement: rounds come back with the results
    int stateHead[2] = {0, 0};
    // Founders built on the host need the foreground now; otherwise it comes with the results.
    const bool hostFounders = p.cluster == ClusterMethod::Seeded && !deviceFounders;
    if (hostFounders) {
        m_idx.download(fg.data(), fg.size(), m_stream);
        QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
    }

    // 4. Cluster.
    m_labels.resize(t.n);
    if (p.cluster == ClusterMethod::Seeded) {
        if (hostFounders) {
            std::vector<int> founderOf(static_cast<std::size_t>(n), -1);
            for (int c = 0; c < K; ++c)
                founderOf[fg[c]] = c;
            m_founderOf.upload(founderOf.data(), founderOf.size(), m_stream);
        }
        m_centres.resize(kk * t.d);
        if (m_prec == k::Prec::F16) m_centres16.resize(2 * kk * t.d);
        m_assignPart.resize(k::assignPartialBytes(n, d, K));
        const bool deviceRefine = version(k::Kernel::Assign) == k::Version::Optimized &&
                                  version(k::Kernel::Centres) == k::Version::Optimized;
        m_state.resize(2 + std::max(p.refine, 0));
        auto centresFrom = [&](const int* founders, const int* labels) {
            k::CentresParams cp;
            cp.x = x;
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
        int* changedAt = nullptr;
        auto assignTo = [&](int* out, const int* previous) {
            k::AssignParams ap;
            ap.x = x;
            ap.n = n;
            ap.d = d;
            ap.k = K;
            ap.centres = m_centres.get();
            ap.founderOf = m_founderOf.get();
            ap.labels = out;
            ap.previous = previous;
            ap.changed = previous ? changedAt : nullptr;
            ap.skip = deviceRefine ? m_state.get() : nullptr;
            ap.centresHalf = m_centres16.get();
            ap.partial = m_assignPart.get();
            k::assign(ap, version(k::Kernel::Assign), m_prec, m_stream);
        };
        m_labels2.resize(t.n);
        m_changed.resize(1);
        timed(r, "cluster", [&] {
            if (deviceRefine) { // every round queued; a converged round turns the rest into no-ops
                usedState = true;
                const std::string key =
                    keyOf(n, d, K, p.refine, x, m_idx.get(), m_mass.get(), m_centres.get(),
                          m_centres16.get(), m_assignPart.get(), m_state.get(), m_founderOf.get(),
                          m_labels.get(), m_labels2.get());
                m_clusterGraph.run(key, m_stream, [&] {
                    m_state.fillBytes(0, m_stream);
                    centresFrom(m_idx.get(), nullptr);
                    changedAt = nullptr;
                    assignTo(m_labels.get(), nullptr);
                    for (int round = 0; round < p.refine; ++round) {
                        centresFrom(nullptr, m_labels.get());
                        changedAt = m_state.get() + 2 + round;
                        assignTo(m_labels2.get(), m_labels.get());
                        k::refineCommit(m_state.get(), round, m_labels.get(), m_labels2.get(), n,
                                        m_stream);
                    }
                });
                return;
            }
            centresFrom(m_idx.get(), nullptr);
            changedAt = nullptr;
            assignTo(m_labels.get(), nullptr);
            changedAt = m_changed.get();
            for (int round = 0; round < p.refine; ++round) {
                r.refineRounds = round + 1;
                centresFrom(nullptr, m_labels.get());
                m_changed.fillBytes(0, m_stream);
                assignTo(m_labels2.get(), m_labels.get());
                std::swap(m_labels, m_labels2);
                int changed = 0;
                m_changed.download(&changed, 1, m_stream);
                QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
                if (changed == 0) break; // converged
            }
        });
    } else {
        // The exact methods are CPU algorithms (O(N^2) memory); their labels come back up. The
        // stage's time spans the CPU work (the stream waits for the labels).
        timed(r, "cluster", [&] {
            std::vector<i64> groups = p.cluster == ClusterMethod::Agglomerative
                                          ? clusterAgglomerative(t.x.data(), t.n, t.d, kk)
                                          : clusterReference(t.x.data(), t.n, t.d, kk);
            std::vector<int> g32(groups.begin(), groups.end());
            m_labels.upload(g32.data(), g32.size(), m_stream);
        });
        r.notes.push_back(std::string("--cluster ") + toString(p.cluster) + " ran on the CPU");
    }

    // 5. Merge.
    timed(r, "merge", [&] {
        k::MergeParams mp;
        mp.x = x;
        mp.n = n;
        mp.d = d;
        mp.k = K;
        mp.mass = m_mass.get();
        mp.labels = m_labels.get();
        for (auto* b : {&m_first, &m_rank, &m_sizes})
            b->resize(kk);
        m_merged.resize(kk * t.d);
        mp.first = m_first.get();
        mp.rank = m_rank.get();
        mp.merged = m_merged.get();
        mp.sizes = m_sizes.get();
        m_order.resize(t.n);
        mp.order = m_order.get();
        k::merge(mp, version(k::Kernel::Merge), m_prec, m_stream);
    });

    // 6. AR heads (weights uploaded once per heads object and precision).
    auto heads = p.arHeads ? p.arHeads : defaultArHeads(t.d);
    r.arHeadsSource = heads->source;
    const std::size_t hd = ArHeads::kHidden, D = static_cast<std::size_t>(d);
    if (m_headsFor != heads.get() || m_headsPrec != m_prec) {
        const std::vector<float> all = packArHeads(*heads);
        stage(m_w32, m_w16, m_pinW, all.data(), all.size());
        m_headsFor = heads.get();
        m_headsPrec = m_prec;
    }
    const std::size_t m1 = kk > 1 ? static_cast<std::size_t>(kk - 1) : 0;
    std::vector<float> err(2 * m1);
    timed(r, "ar_heads", [&] {
        k::ArParams ap;
        ap.merged = m_merged.get();
        ap.k = K;
        ap.d = d;
        k::bindArWeights(
            ap, m_prec == k::Prec::F16 ? static_cast<const void*>(m_w16.get()) : m_w32.get(), d,
            m_prec);
        m_means.resize(std::max<std::size_t>(1, 2 * m1 * D));
        m_hidden.resize(std::max<std::size_t>(1, 2 * m1 * hd));
        m_err.resize(std::max<std::size_t>(1, 2 * m1));
        ap.means = m_means.get();
        ap.hidden = m_hidden.get();
        ap.err = m_err.get();
        const std::string key = keyOf(K, d, ap.merged, ap.w1[0], ap.means, ap.hidden, ap.err);
        m_arGraph.run(key, m_stream,
                      [&] { k::arHeads(ap, version(k::Kernel::ArHeads), m_prec, m_stream); });
    });

    // 7. Metrics terms.
    timed(r, "metrics", [&] {
        k::MetricsParams mp;
        mp.x = x;
        mp.n = n;
        mp.d = d;
        mp.k = K;
        mp.labels = m_labels.get();
        mp.merged = m_merged.get();
        m_terms.resize(4 * t.n);
        m_mnorm.resize(kk);
        mp.tokenTerms = m_terms.get();
        mp.mergedNorm = m_mnorm.get();
        m_padErr.resize(t.n);
        mp.paddedErr = m_padErr.get();
        k::metrics(mp, version(k::Kernel::Metrics), m_prec, m_stream);
    });

    // Results back to the host.
    std::vector<float> terms(4 * static_cast<std::size_t>(n)), mnorm(static_cast<std::size_t>(K));
    std::vector<int> labels(static_cast<std::size_t>(n)), gsizes(static_cast<std::size_t>(K));
    std::vector<float> padErr(static_cast<std::size_t>(n));
    Download down;
    timed(r, "download", [&] {
        r.layerEntropy.resize(r.layers * t.n);
        for (auto* v : {&r.saliency, &r.uniforms, &r.pi, &r.mass})
            v->resize(t.n);
        r.merged.resize(kk * t.d);
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
        if (!hostFounders) down.add(m_idx, fg.data(), fg.size());
        if (usedState) down.add(m_state, &stateHead[0], 2);
        down.run(m_packed, m_pinOut, m_stream);
    });
    QMPP_CUDA_CHECK(cudaStreamSynchronize(m_stream));
    const auto synced = std::chrono::steady_clock::now();
    down.finish();
    const auto copied = std::chrono::steady_clock::now();
    using Ms = std::chrono::duration<double, std::milli>;
    for (const auto& [stageName, ms] : m_line.resolve())
        r.timings.push_back({stageName, ms});
    r.foreground.assign(fg.begin(), fg.end());
    if (usedState) r.refineRounds = stateHead[1];
    for (auto& u : r.uniforms)
        u = std::min(std::max(u, 1e-7f), 1.0f - 1e-7f);
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
    finishMetrics(sums, p, r);
    const std::vector<double> rowErr(padErr.begin(), padErr.end());
    r.losses.fidelity =
        fidelityLossFromRows(rowErr.data(), t.n, t.d, sums.x2, r.metrics.normMassTopK);
    r.losses.total = p.alpha * r.losses.ar + r.losses.fidelity;
    // host time after the device finished: the results copied out, then summarized
    r.timings.push_back({"copy_out", Ms(copied - synced).count()});
    r.timings.push_back({"summaries", Ms(std::chrono::steady_clock::now() - copied).count()});
    r.timings.push_back({"total", std::chrono::duration<double, std::milli>(
                                      std::chrono::steady_clock::now() - wall0)
                                      .count()});
    return r;
}

} // namespace

std::unique_ptr<Backend> makeCudaBackend(bool optimized, Precision precision) {
    return std::make_unique<CudaBackend>(optimized, precision);
}

} // namespace qmpp
