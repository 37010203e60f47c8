// GPU benchmark: every kernel x version x precision (verified by `qmpp check --quick` first),
// cuBLAS products of the same shapes as references, the device's measured ceilings, and the
// whole pipeline host-in/host-out. Times are CUDA-event medians after warm-up; inputs rotate
// among several copies when they would fit in L2, so the cache does not flatter small sizes.
#include "qmpp/bench.h"
#include "qmpp/check.h"
#include "qmpp/cuda_backend.h"
#include "qmpp/engine.h"
#include "qmpp/ops.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"
#include "qmpp/kernels/params.h"

#include "qmpp/kernels/cublas.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <type_traits>

namespace qmpp {

namespace kk = kernels;
using kk::DeviceBuffer;

namespace {

// A cuBLAS handle on a stream; the library comes from kernels::cublas() (loaded on first use).
struct Cublas {
    const kk::CublasApi& api = kk::cublas();
    decltype(kk::CublasApi::gemm) gemm = api.gemm;
    decltype(kk::CublasApi::gemmBatched) gemmBatched = api.gemmBatched;
    cublasHandle_t handle = nullptr;

    explicit Cublas(cudaStream_t s) {
        QMPP_CUBLAS_CHECK(api.create(&handle));
        QMPP_CUBLAS_CHECK(api.setStream(handle, s));
    }
    ~Cublas() {
        if (handle) api.destroy(handle);
    }
    Cublas(const Cublas&) = delete;
    Cublas& operator=(const Cublas&) = delete;
};

struct Ctx {
    std::ostream& log;
    cudaStream_t stream = nullptr;
    int warmup = 2, repeats = 20;
    std::vector<TimingStats> rows;
};

// Times f(rep) with events: warm-up, then repeats (fewer when one call is slow). The call is
// queued behind a gate kernel and the gate opened after the stop event is queued, so a row is
// the GPU time of one call (as a profiler reports it), without the host's launch latency.
std::vector<double> timeIt(Ctx& c, const std::function<void(int)>& f) {
    kk::EventTimer t;
    kk::StreamGate gate;
    auto once = [&](int rep) {
        gate.hold(c.stream);
        t.start(c.stream);
        f(rep);
        t.stop(c.stream);
        gate.release();
        return double(t.ms());
    };
    double first = 0;
    for (int w = 0; w < c.warmup; ++w)
        first = once(w);
    const int reps = first > 2000 ? 2 : first > 200 ? 5 : c.repeats;
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r)
        ms.push_back(once(r));
    return ms;
}

void record(Ctx& c, const std::vector<double>& ms, const std::string& kernel,
            const std::string& version, const std::string& prec, i64 n, i64 d, i64 l, i64 k,
            double flops, double bytes, bool verified) {
    TimingStats s = summarize(ms);
    s.kernel = kernel;
    s.version = version;
    s.precision = prec;
    s.n = n;
    s.d = d;
    s.l = l;
    s.k = k;
    s.tflops = s.median > 0 ? flops / (s.median * 1e9) : 0;
    s.gbps = s.median > 0 ? bytes / (s.median * 1e6) : 0;
    s.verified = verified;
    c.log << std::left << std::setw(14) << kernel << std::setw(11) << version << std::setw(6)
          << prec << std::right << std::setw(7) << n << std::setw(4) << l << std::setw(6) << k
          << std::fixed << std::setprecision(4) << std::setw(12) << s.median << std::setw(11)
          << s.min << std::setw(11) << s.p90 << std::setprecision(2) << std::setw(9) << s.tflops
          << std::setw(9) << s.gbps << "\n";
    c.log.unsetf(std::ios::fixed);
    c.rows.push_back(s);
}

// L hidden-state layers [L, n, d] of synthetic tokens (the same ones for every use at this size).
std::vector<float> syntheticHidden(int layers, i64 n, i64 d) {
    std::vector<float> hid;
    for (int l = 0; l < layers; ++l) {
        const auto part = syntheticTokens(n, d, 2000 + 31 * l + n);
        hid.insert(hid.end(), part.begin(), part.end());
    }
    return hid;
}

struct PipelineTimes {
    std::vector<double> ms;        // wall ms per run
    std::vector<StageTiming> last; // the last run's stages
    bool plausible = true;         // pi sums to 1 and every token has a label (first run)
};

// The whole pipeline: warm-up, then repeats (at least 3 when one run takes over 2 s).
PipelineTimes timePipeline(Ctx& c, Backend& backend, const TokenSet& t, MergeParams p, i64 k) {
    p.k = k;
    PipelineTimes out;
    for (int rep = 0; rep < c.warmup + c.repeats; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        const MergeResult r = backend.run(t, p, k);
        const double el =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        out.last = r.timings;
        if (rep == 0) {
            double piSum = 0;
            for (float x : r.pi)
                piSum += x;
            out.plausible = std::abs(piSum - 1) < 1e-3 && i64(r.labels.size()) == t.n;
        }
        if (rep < c.warmup) continue;
        out.ms.push_back(el);
        if (rep >= c.warmup + 2 && el > 2000) break;
    }
    return out;
}

// The stages of the last pipeline run, one line.
void logStages(Ctx& c, const std::vector<StageTiming>& t) {
    c.log << "    stages (ms):";
    for (const auto& s : t)
        c.log << " " << s.stage << " " << std::fixed << std::setprecision(3) << s.ms;
    c.log.unsetf(std::ios::fixed);
    c.log << "\n";
}

// Copies of one input, rotated per repeat when a copy would stay in L2.
struct Rotating {
    std::vector<DeviceBuffer<float>> f32;
    std::vector<DeviceBuffer<std::uint16_t>> f16;
    kk::Prec prec;
    Rotating(const std::vector<float>& host, kk::Prec p, cudaStream_t s) : prec(p) {
        const std::size_t bytes = host.size() * (p == kk::Prec::F16 ? 2 : 4);
        const int copies = bytes < (64u << 20) ? 4 : 1;
        f32.resize(copies);
        f16.resize(copies);
        for (int i = 0; i < copies; ++i) {
            f32[i].upload(host.data(), host.size(), s);
            if (p == kk::Prec::F16) {
                f16[i].resize(host.size());
                kk::toHalf(f32[i].get(), f16[i].get(), host.size(), s);
            }
        }
    }
    const void* get(int rep) const {
        const int i = rep % static_cast<int>(f32.size());
        return prec == kk::Prec::F16 ? static_cast<const void*>(f16[i].get()) : f32[i].get();
    }
};

void ceilings(Ctx& c, Cublas& cb, nlohmann::ordered_json& out) {
    // Device-to-device copy of 1 GiB: bytes read + written over time.
    const std::size_t bytes = std::size_t(1) << 30;
    DeviceBuffer<std::uint8_t> a(bytes), b(bytes);
    a.fillBytes(1, c.stream);
    const auto copy = timeIt(c, [&](int) {
        QMPP_CUDA_CHECK(
            cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, c.stream));
    });
    const double copyGbps = 2.0 * bytes / (summarize(copy).median * 1e6);
    // Large GEMMs through cuBLAS: FP16 in, FP32 accumulate (tensor cores), and FP32 (SGEMM).
    const int m = 8192;
    DeviceBuffer<float> A(std::size_t(m) * m), C(std::size_t(m) * m);
    kk::philoxUniforms(A.get(), A.size(), 11, c.stream);
    DeviceBuffer<std::uint16_t> Ah(A.size()), Ch(A.size());
    kk::toHalf(A.get(), Ah.get(), A.size(), c.stream);
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&](bool half) {
        QMPP_CUBLAS_CHECK(
            cb.gemm(cb.handle, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &one,
                    half ? (void*)Ah.get() : (void*)A.get(), half ? CUDA_R_16F : CUDA_R_32F, m,
                    half ? (void*)Ah.get() : (void*)A.get(), half ? CUDA_R_16F : CUDA_R_32F, m,
                    &zero, half ? (void*)Ch.get() : (void*)C.get(), half ? CUDA_R_16F : CUDA_R_32F,
                    m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    const double flops = 2.0 * m * double(m) * m;
    const double f16 = flops / (summarize(timeIt(c, [&](int) { gemm(true); })).median * 1e9);
    const double f32 = flops / (summarize(timeIt(c, [&](int) { gemm(false); })).median * 1e9);
    out = {
        {"copy_gbps", copyGbps},
        {"gemm_fp16_tflops", f16},
        {"gemm_fp32_tflops", f32},
        {"how", "1 GiB device-to-device copy (read + write); cuBLAS 8192^3 GEMM, FP32 accumulate"}};
    c.log << "ceilings: copy " << std::fixed << std::setprecision(0) << copyGbps
          << " GB/s, GEMM fp16 " << std::setprecision(1) << f16 << " TFLOP/s, fp32 " << f32
          << " TFLOP/s\n";
    c.log.unsetf(std::ios::fixed);
}

} // namespace

std::vector<TimingStats> benchCuda(const BenchOptions& o, bool withOptimized, std::ostream& log,
                                   nlohmann::ordered_json& meta) {
    Ctx c{log, nullptr, 2, 20, {}};
    c.repeats = o.repeats;
    c.warmup = std::max(1, o.warmup);
    QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
    Cublas cublas(c.stream);
    const kk::DeviceInfo info = kk::deviceInfo(0);
    meta["device"] = {{"name", info.name},
                      {"sm", std::to_string(info.major) + std::to_string(info.minor)},
                      {"sms", info.smCount},
                      {"memory_gib", double(info.totalMemory) / (1 << 30)}};
    log << "device: " << info.name << "\n";

    // Verify first: a variant that fails its check is not timed.
    std::ostringstream checkLog;
    CheckOptions co;
    co.quick = true;
    co.backend = withOptimized ? "all" : "cuda-basic";
    const auto checks = runChecks(co, checkLog);
    std::set<std::string> failed;
    std::map<std::string, double> worst; // kernel/version/precision -> largest relative error
    for (const auto& r : checks) {
        const std::string key = r.kernel + "/" + r.version + "/" + r.precision;
        if (!r.pass) failed.insert(key);
        worst[key] = std::max(worst[key], r.maxRelErr);
    }
    meta["verification"] = {{"command", "qmpp check --quick (same process)"},
                            {"rows", checks.size()},
                            {"failed", std::vector<std::string>(failed.begin(), failed.end())},
                            {"max_rel_err", worst}};
    log << "verified: " << checks.size() - failed.size() << " of " << checks.size()
        << " check rows passed\n";

    ceilings(c, cublas, meta["ceilings"]);
    log << std::left << std::setw(14) << "kernel" << std::setw(11) << "version" << std::setw(6)
        << "prec" << std::right << std::setw(7) << "N" << std::setw(4) << "L" << std::setw(6) << "K"
        << std::setw(12) << "median ms" << std::setw(11) << "min" << std::setw(11) << "p90"
        << std::setw(9) << "TFLOP/s" << std::setw(9) << "GB/s"
        << "\n";

    const i64 d = o.dim;
    // On Hopper the optimized FP16 kernels run warpgroup tiles; the mma.sync tiles they replace
    // are timed beside them (rows named *_mma).
    auto mmaBeside = [](kk::Version v, kk::Prec prec) {
        return v == kk::Version::Optimized && prec == kk::Prec::F16 && kk::warpgroupTiles();
    };
    for (i64 n : o.tokens) {
        std::vector<kk::Version> versions;
        if (n <= o.basicMaxN) versions.push_back(kk::Version::Basic);
        if (withOptimized) versions.push_back(kk::Version::Optimized);
        const i64 k = std::max<i64>(1, static_cast<i64>(std::floor(o.budget * double(n))));
        const auto host = syntheticTokens(n, d, 1000 + n);
        for (auto prec : {kk::Prec::F32, kk::Prec::F16}) {
            const std::string pn = kk::precName(prec);
            const double es = prec == kk::Prec::F16 ? 2 : 4;
            Rotating X(host, prec, c.stream);
            // cuBLAS reference: the QK^T product of one layer, and L hidden-state layers batched.
            for (int L : o.layers) {
                Rotating H(syntheticHidden(L, n, d), prec, c.stream);
                DeviceBuffer<float> S32(std::size_t(L) * n * n);
                DeviceBuffer<std::uint16_t> S16(prec == kk::Prec::F16 ? std::size_t(L) * n * n : 1);
                const float one = 1.0f, zero = 0.0f;
                const auto ms = timeIt(c, [&](int rep) {
                    const cudaDataType t = prec == kk::Prec::F16 ? CUDA_R_16F : CUDA_R_32F;
                    void* out = prec == kk::Prec::F16 ? (void*)S16.get() : (void*)S32.get();
                    QMPP_CUBLAS_CHECK(cublas.gemmBatched(
                        cublas.handle, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(n), int(d), &one,
                        H.get(rep), t, int(d), n * d, H.get(rep), t, int(d), n * d, &zero, out, t,
                        int(n), n * n, L, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                });
                record(c, ms, "cublas_qkt", "cublas", pn, n, d, L, 0, 2.0 * L * n * n * double(d),
                       es * (L * n * d + L * n * double(n)), true);

                for (auto v : versions) {
                    const std::string vn = kk::versionName(v);
                    if (!kk::available(kk::Kernel::EntropyGram, v)) continue;
                    const bool ok = !failed.count("entropy_gram/" + vn + "/" + pn);
                    DeviceBuffer<float> h(std::size_t(L) * n);
                    // hidden states: L sources, one scale each
                    const std::vector<double> hb = multiScaleBetas(1, d),
                                              tb = multiScaleBetas(L, d);
                    const std::vector<float> hiddenBeta(hb.begin(), hb.end()),
                        tokenBetas(tb.begin(), tb.end());
                    kk::EntropyGramParams gp = kk::entropyGramParams(nullptr, L, int(n), int(d),
                                                                     hiddenBeta.data(), 1, h.get());
                    DeviceBuffer<std::uint8_t> work;
                    auto scratch = [&] {
                        gp.workBytes = kk::entropyGramWorkBytes(gp, v, prec);
                        work.resize(gp.workBytes);
                        gp.work = work.get();
                    };
                    scratch();
                    if (ok)
                        record(c,
                               timeIt(c,
                                      [&](int rep) {
                                          gp.x = H.get(rep);
                                          kk::entropyGram(gp, v, prec, c.stream);
                                      }),
                               "entropy_hidden", vn, pn, n, d, L, 0,
                               2.0 * L * n * n * double(d) + 5.0 * L * n * n,
                               es * L * n * d + 4.0 * L * n, true);
                    if (ok && mmaBeside(v, prec)) {
                        gp.tiles = kk::EntropyGramParams::Tiles::WidePersistent;
                        record(c,
                               timeIt(c,
                                      [&](int rep) {
                                          gp.x = H.get(rep);
                                          kk::entropyGram(gp, v, prec, c.stream);
                                      }),
                               "entropy_hidden_mma", vn, pn, n, d, L, 0,
                               2.0 * L * n * n * double(d) + 5.0 * L * n * n,
                               es * L * n * d + 4.0 * L * n, true);
                        gp.tiles = kk::EntropyGramParams::Tiles::Auto;
                    }
                    // tokens: one source, L scales
                    gp = kk::entropyGramParams(nullptr, 1, int(n), int(d), tokenBetas.data(), L,
                                               h.get());
                    scratch();
                    if (ok)
                        record(c,
                               timeIt(c,
                                      [&](int rep) {
                                          gp.x = X.get(rep);
                                          kk::entropyGram(gp, v, prec, c.stream);
                                      }),
                               "entropy_tokens", vn, pn, n, d, L, 0,
                               2.0 * n * n * double(d) + 5.0 * L * n * n, es * n * d + 4.0 * L * n,
                               true);
                }
                // supplied attention maps [L, N, N] (one head), positive values from Philox
                if (double(L) * n * n * 4 <= 16e9) {
                    DeviceBuffer<float> a32(std::size_t(L) * n * n);
                    DeviceBuffer<std::uint16_t> a16(prec == kk::Prec::F16 ? a32.size() : 1);
                    kk::philoxUniforms(a32.get(), a32.size(), 77 + n, c.stream);
                    if (prec == kk::Prec::F16)
                        kk::toHalf(a32.get(), a16.get(), a32.size(), c.stream);
                    DeviceBuffer<float> h(std::size_t(L) * n);
                    const kk::EntropyMapsParams mp = kk::entropyMapsParams(
                        prec == kk::Prec::F16 ? static_cast<const void*>(a16.get()) : a32.get(), L,
                        1, int(n), h.get());
                    for (auto v : versions) {
                        const std::string vn = kk::versionName(v);
                        if (!kk::available(kk::Kernel::EntropyMaps, v) ||
                            failed.count("entropy_maps/" + vn + "/" + pn))
                            continue;
                        record(c, timeIt(c, [&](int) { kk::entropyMaps(mp, v, prec, c.stream); }),
                               "entropy_maps", vn, pn, n, d, L, 0, 6.0 * L * n * double(n),
                               es * L * n * double(n) + 4.0 * L * n, true);
                    }
                }
            }
            // The other kernels at this size (L does not enter them).
            DeviceBuffer<float> cosBuf(std::size_t(n) * n), invNorms(2 * n);
            DeviceBuffer<std::uint16_t> cenHalf(2 * k * d);
            DeviceBuffer<std::uint8_t> assignPart(kk::assignPartialBytes(int(n), int(d), int(k)));
            { // cuBLAS reference for the cosine product: the same inputs, FP32 output
                const float one = 1.0f, zero = 0.0f;
                const cudaDataType t = prec == kk::Prec::F16 ? CUDA_R_16F : CUDA_R_32F;
                record(c,
                       timeIt(c,
                              [&](int rep) {
                                  QMPP_CUBLAS_CHECK(cublas.gemm(
                                      cublas.handle, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(n),
                                      int(d), &one, X.get(rep), t, int(d), X.get(rep), t, int(d),
                                      &zero, cosBuf.get(), CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
                              }),
                       "cublas_cosine", "cublas", pn, n, d, 1, 0, 2.0 * n * n * double(d),
                       es * 2 * n * d + 4.0 * n * n, true);
            }
            DeviceBuffer<float> s(n), u(n), keys(n), pi(n), mass(n), scr(2), cen(k * d),
                merged(k * d), terms(4 * n), mn(k);
            DeviceBuffer<int> sel(n), idx(k), labels(n), groups(n), first(k), rank(k), sizes(k),
                founderOf(n), order(n), fusedFounders(n);
            kk::philoxUniforms(s.get(), n, 5, c.stream);
            kk::philoxUniforms(u.get(), n, 6, c.stream);
            kk::philoxUniforms(mass.get(), n, 8, c.stream);
            std::vector<int> g(static_cast<std::size_t>(n)), fo(static_cast<std::size_t>(n), -1);
            for (i64 i = 0; i < n; ++i)
                g[i] = int(i % k);
            for (i64 c2 = 0; c2 < k; ++c2)
                fo[c2] = int(c2);
            groups.upload(g.data(), g.size(), c.stream);
            founderOf.upload(fo.data(), fo.size(), c.stream);
            const auto heads = defaultArHeads(d);
            Rotating W(packArHeads(*heads), prec, c.stream);
            const i64 m1 = std::max<i64>(k - 1, 1);
            DeviceBuffer<float> means(2 * m1 * d), hidden(2 * m1 * 256), err(2 * m1);
            for (auto v : versions) {
                const std::string vn = kk::versionName(v);
                auto run = [&](kk::Kernel kern, const std::string& p2, double flops, double bytes,
                               const std::function<void(int)>& f) {
                    if (!kk::available(kern, v)) return;
                    if (failed.count(std::string(kk::kernelName(kern)) + "/" + vn + "/" + p2)) {
                        c.log << kk::kernelName(kern) << " " << vn << " " << p2
                              << ": failed its check, not timed\n";
                        return;
                    }
                    record(c, timeIt(c, f), kk::kernelName(kern), vn, p2, n, d, 1, k, flops, bytes,
                           true);
                };
                const double N = double(n), D = double(d), K = double(k);
                if (prec == kk::Prec::F32) { // precision-independent kernels, timed once
                    run(kk::Kernel::Gumbel, "fp32", 20 * N, 24 * N, [&](int) {
                        kk::GumbelParams gp =
                            kk::gumbelParams(s.get(), u.get(), int(n), 0.1f, 0.01f, keys.get(),
                                             pi.get(), mass.get(), scr.get());
                        kk::gumbel(gp, v, c.stream);
                    });
                    run(kk::Kernel::TopK, "fp32", 0, 8 * N + 4 * K, [&](int) {
                        kk::TopKParams tp =
                            kk::topKParams(keys.get(), int(n), int(k), sel.get(), idx.get());
                        kk::topK(tp, v, c.stream);
                    });
                    // both in one launch, as the pipeline runs them
                    if (v == kk::Version::Optimized &&
                        !failed.count("gumbel_topk/" + vn + "/fp32") &&
                        !failed.count("gumbel/" + vn + "/fp32") &&
                        !failed.count("topk/" + vn + "/fp32"))
                        record(c,
                               timeIt(c,
                                      [&](int) {
                                          kk::GumbelParams gp = kk::gumbelParams(
                                              s.get(), u.get(), int(n), 0.1f, 0.01f, keys.get(),
                                              pi.get(), mass.get(), scr.get());
                                          kk::TopKParams tp =
                                              kk::topKParams(keys.get(), int(n), int(k), sel.get(),
                                                             idx.get(), fusedFounders.get());
                                          kk::gumbelTopK(gp, tp, v, c.stream);
                                      }),
                               "gumbel_topk", vn, "fp32", n, d, 1, k, 20 * N, 32 * N + 4 * K, true);
                }
                run(kk::Kernel::Cosine, pn, 2 * N * N * D, es * N * D + 4 * N * N, [&](int rep) {
                    kk::CosineParams cp = kk::cosineParams(X.get(rep), X.get(rep), int(n), int(n),
                                                           int(d), cosBuf.get(), invNorms.get());
                    kk::cosine(cp, v, prec, c.stream);
                });
                if (mmaBeside(v, prec) && !failed.count("cosine/" + vn + "/" + pn))
                    record(c,
                           timeIt(c,
                                  [&](int rep) {
                                      kk::CosineParams cp =
                                          kk::cosineParams(X.get(rep), X.get(rep), int(n), int(n),
                                                           int(d), cosBuf.get(), invNorms.get());
                                      cp.tiles = kk::CosineParams::Tiles::MmaSync;
                                      kk::cosine(cp, v, prec, c.stream);
                                  }),
                           "cosine_mma", vn, pn, n, d, 1, 0, 2 * N * N * D, es * N * D + 4 * N * N,
                           true);
                run(kk::Kernel::Centres, pn, 2 * N * D, es * N * D + 4 * K * D, [&](int rep) {
                    kk::centres(kk::centresParams(X.get(rep), int(n), int(d), int(k), groups.get(),
                                                  mass.get(), cen.get()),
                                v, prec, c.stream);
                });
                auto assignOnce = [&](int rep, kk::AssignParams::Tiles tiles) {
                    kk::AssignParams ap = kk::assignParams(X.get(rep), int(n), int(d), int(k),
                                                           cen.get(), founderOf.get(), labels.get(),
                                                           cenHalf.get(), assignPart.get());
                    ap.tiles = tiles;
                    kk::assign(ap, v, prec, c.stream);
                };
                run(kk::Kernel::Assign, pn, 2 * N * K * D, es * N * D + 4 * K * D,
                    [&](int rep) { assignOnce(rep, kk::AssignParams::Tiles::Auto); });
                if (mmaBeside(v, prec) && n >= 1024 &&
                    !failed.count("assign/" + vn + "/" + pn)) // 128 x 256
                    record(
                        c,
                        timeIt(c, [&](int rep) { assignOnce(rep, kk::AssignParams::Tiles::Wide); }),
                        "assign_mma", vn, pn, n, d, 1, k, 2 * N * K * D, es * N * D + 4 * K * D,
                        true);
                // Merge relabels in place; a relabelled labelling is again a valid one (the same
                // groups, now in first-token order), so every repeat does the same work.
                QMPP_CUDA_CHECK(cudaMemcpyAsync(labels.get(), groups.get(), 4 * n,
                                                cudaMemcpyDeviceToDevice, c.stream));
                run(kk::Kernel::Merge, pn, 2 * N * D, es * N * D + 4 * K * D, [&](int rep) {
                    kk::merge(kk::mergeParams(X.get(rep), int(n), int(d), int(k), mass.get(),
                                              labels.get(), first.get(), rank.get(), merged.get(),
                                              sizes.get(), order.get()),
                              v, prec, c.stream);
                });
                run(kk::Kernel::ArHeads, pn, (K - 1) * 2 * 2 * 256 * D,
                    es * 4 * 256 * D + 4 * K * D, [&](int rep) {
                        kk::arHeads(kk::arParams(merged.get(), int(k), int(d), W.get(rep), prec,
                                                 means.get(), hidden.get(), err.get()),
                                    v, prec, c.stream);
                    });
                run(kk::Kernel::Metrics, pn, 8 * N * D, es * N * D + 4 * K * D, [&](int rep) {
                    kk::metrics(kk::metricsParams(X.get(rep), int(n), int(d), int(k), groups.get(),
                                                  merged.get(), terms.get(), mn.get()),
                                v, prec, c.stream);
                });
            }
        }
        // The whole pipeline, host tokens in, host result out (one token set for every row).
        TokenSet t;
        t.n = n;
        t.d = d;
        t.x = host;
        for (int L : o.layers)
            for (bool opt : {false, true}) {
                if (opt && !withOptimized) continue;
                if (!opt && n > o.basicMaxN) continue;
                for (auto prec : {Precision::FP32, Precision::FP16}) {
                    auto backend = makeCudaBackend(opt, prec);
                    MergeParams p;
                    p.layers = L;
                    p.precision = prec;
                    const PipelineTimes pt = timePipeline(c, *backend, t, p, k);
                    record(c, pt.ms, "pipeline", backend->name(), toString(prec), n, d, L, k, 0,
                           4.0 * n * d + 4.0 * k * d, pt.plausible);
                    logStages(c, pt.last);
                }
            }
        // From L hidden-state layers: host in -> host out; then with the layers (and the tokens)
        // already on the device (a token-set revision: the warm-up run uploads them, the timed
        // runs reuse them; the result still goes back to the host).
        if (withOptimized && o.hiddenLayers > 0) {
            TokenSet th = t; // the hidden states are built once for both precisions
            th.hiddenLayers = o.hiddenLayers;
            th.hidden = syntheticHidden(o.hiddenLayers, n, d);
            for (auto prec : {Precision::FP32, Precision::FP16}) {
                auto backend = makeCudaBackend(true, prec);
                MergeParams p;
                p.precision = prec;
                th.revision = 0;
                const PipelineTimes pt = timePipeline(c, *backend, th, p, k);
                const double bytes = double(o.hiddenLayers) * n * d * 4;
                record(c, pt.ms, "pipeline_hidden", "cuda", toString(prec), n, d, o.hiddenLayers, k,
                       0, bytes, pt.plausible);
                logStages(c, pt.last);
                th.revision = 1;
                const PipelineTimes pr = timePipeline(c, *backend, th, p, k);
                record(c, pr.ms, "pipeline_hidden_resident", "cuda", toString(prec), n, d,
                       o.hiddenLayers, k, 0, 4.0 * n * d + 4.0 * k * d, pr.plausible);
                logStages(c, pr.last);
            }
        }
    }
    QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(c.stream));
    return c.rows;
}

} // namespace qmpp
