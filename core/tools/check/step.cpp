// The batched merge step on device memory (a model's hook) against the CPU step: a batch of
// photo tokens with counts, a kept class token and each item's own N, on FP32 and FP16.
#include "harness.h"
#include "qmpp/batch.h"
#include "qmpp/cuda_backend.h"

#include <sstream>

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
void checkStep(const std::vector<Input>& inputs, const CheckOptions& o, std::mt19937_64& rng,
               Printer& pr) {
    // device uniforms at an offset equal the host's, bit for bit
    for (std::uint64_t off : {std::uint64_t(3), std::uint64_t(262149)}) {
        const i64 n = 1000;
        const std::uint64_t s = rng();
        kk::DeviceBuffer<float> du(n);
        kk::philoxUniforms(du.get(), n, s, nullptr, off);
        std::vector<float> host(static_cast<std::size_t>(n));
        philoxGenerate(s, host.data(), n, off);
        const bool same = fetch(du, n) == host;
        pr.row({"uniforms_offset", "curand", "fp32", "offset " + std::to_string(off), n, 0,
                same ? 0.0 : 1.0, 0, 0, same, same ? "device == host, bit for bit" : "differ"});
    }
    for (const auto& in : inputs) {
        if (in.name != "photo") continue;
        const i64 B = 3, N = std::min<i64>(in.n, 1024), D = in.d;
        std::vector<float> x(std::size_t(B * N * D)), counts(std::size_t(B * N)),
            entropy(std::size_t(B * N));
        std::uniform_int_distribution<int> c4(1, 4);
        std::uniform_real_distribution<float> h(0.5f, 5.0f);
        for (i64 b = 0; b < B; ++b)
            for (i64 i = 0; i < N; ++i) {
                for (i64 j = 0; j < D; ++j)
                    x[std::size_t((b * N + i) * D + j)] =
                        in.x[std::size_t(((i + 37 * b) % in.n) * D + j)];
                counts[std::size_t(b * N + i)] = float(c4(rng));
                entropy[std::size_t(b * N + i)] = h(rng);
            }
        TokenBatch tb;
        tb.b = B;
        tb.n = N;
        tb.d = D;
        tb.keepFirst = 1;
        tb.itemN = {N, N - 5, N / 2};
        StepParams p;
        p.k = {N / 4, (N - 5) / 3, N / 2 - 7};
        p.seed = rng();
        p.offset = {0, std::uint64_t(N), std::uint64_t(2 * N)};
        p.gumbelScale = 0.5;
        const std::size_t K = std::size_t(p.kMax());
        // the CPU step, FP32
        std::vector<float> cm(B * K * D), cc(B * K), cmass(B * N);
        std::vector<std::int32_t> cl(B * N);
        tb.x = x.data();
        tb.counts = counts.data();
        tb.entropy = entropy.data();
        auto cpu = makeCpuBatchStages();
        mergeStep(*cpu, tb, p, {cm.data(), cc.data(), cl.data(), nullptr, cmass.data()});
        for (const char* which : {"cuda-basic", "cuda"}) {
            if (o.backend != "all" && o.backend != which) continue;
            for (const kk::Prec prec : {kk::Prec::F32, kk::Prec::F16}) {
                const bool half = prec == kk::Prec::F16;
                const std::vector<float> xr = half ? roundHalf(x) : x;
                Dev dev;
                TokenBatch db = tb;
                db.memory = Memory::Device;
                db.precision = half ? Precision::FP16 : Precision::FP32;
                db.x = dev.put(x, prec);
                kk::DeviceBuffer<float> dcounts(counts.size()), dent(entropy.size()),
                    dmerged(B * K * D), dout(B * K), dmass(B * N);
                kk::DeviceBuffer<std::int32_t> dlabels(B * N);
                dcounts.upload(counts.data(), counts.size());
                dent.upload(entropy.data(), entropy.size());
                db.counts = dcounts.get();
                db.entropy = dent.get();
                auto stages = makeCudaBatchStages(std::string(which) == "cuda");
                mergeStep(*stages, db, p,
                          {dmerged.get(), dout.get(), dlabels.get(), nullptr, dmass.get()});
                const auto labels = fetch(dlabels, B * N);
                const auto outCounts = fetch(dout, B * K), mass = fetch(dmass, B * N);
                std::vector<float> merged(B * K * D);
                if (half) { // half rows, packed
                    std::vector<std::uint16_t> h16(merged.size());
                    QMPP_CUDA_CHECK(cudaMemcpy(h16.data(), dmerged.get(), h16.size() * 2,
                                               cudaMemcpyDeviceToHost));
                    for (std::size_t i = 0; i < merged.size(); ++i)
                        merged[i] = halfToFloat(h16[i]);
                } else {
                    merged = fetch(dmerged, B * K * D);
                }
                // the device's merge against a float64 merge of its own labels and mass; its
                // labels against the CPU's (a disagreement must be a near-tie)
                std::vector<double> ref(merged.size(), 0.0), refCounts(outCounts.size(), 0.0),
                    wsum(outCounts.size(), 0.0);
                i64 agree = 0, total = 0;
                bool shapeOk = true;
                for (i64 b = 0; b < B; ++b) {
                    const i64 n = tb.itemTokens(b), kb = p.k[std::size_t(b)];
                    for (i64 i = 0; i < N; ++i) {
                        const std::int32_t l = labels[std::size_t(b * N + i)];
                        if (i >= n) {
                            shapeOk = shapeOk && l == -1;
                            continue;
                        }
                        if (l < 0 || l >= kb || (i == 0) != (l == 0)) {
                            shapeOk = false;
                            continue;
                        }
                        ++total;
                        agree += l == cl[std::size_t(b * N + i)];
                        const std::size_t g = std::size_t(b * i64(K) + l);
                        const double c = counts[std::size_t(b * N + i)];
                        const double w = i == 0 ? 1.0 : double(mass[std::size_t(b * N + i)]) * c;
                        refCounts[g] += c;
                        wsum[g] += w;
                        for (i64 j = 0; j < D; ++j)
                            ref[g * D + j] += w * xr[std::size_t((b * N + i) * D + j)];
                    }
                }
                for (std::size_t g = 0; g < wsum.size(); ++g)
                    for (i64 j = 0; j < D; ++j)
                        ref[g * D + j] = wsum[g] > 0 ? ref[g * D + j] / wsum[g] : 0.0;
                const Tol t = half ? kF16 : kF32;
                Cmp c = compare(merged.data(), ref.data(), merged.size(), {t.atol * 10, t.rtol});
                const Cmp cn =
                    compare(outCounts.data(), refCounts.data(), refCounts.size(), {0.0, 1e-7});
                const double rate = double(agree) / double(std::max<i64>(total, 1));
                const bool ok = c.pass && cn.pass && shapeOk && rate >= (half ? 0.97 : 0.995);
                std::ostringstream note;
                note << std::fixed << std::setprecision(2) << 100 * rate
                     << "% labels agree with the CPU step; counts "
                     << (cn.pass ? "exact" : "differ") << (shapeOk ? "" : "; bad label layout")
                     << (c.pass ? "" : "; merged: " + c.note);
                pr.row({"merge_step", which, kk::precName(prec), in.name + " B=3 counts", N, D,
                        c.maxRel, t.rtol, t.atol * 10, ok, note.str()});
            }
        }
    }
}
#endif

} // namespace qmpp::check
