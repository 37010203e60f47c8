// The whole pipeline on the GPU: device uniforms against the host's, the CUDA backends against
// the CPU on the photo, CUDA-graph replays against direct runs, resident inputs against uploads.
#include "harness.h"
#include "qmpp/cuda_backend.h"
#include "qmpp/engine.h"

#include <sstream>

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
void checkPipeline(const std::vector<Input>& inputs, const CheckOptions& o, std::mt19937_64& rng,
                   Printer& pr) {
    // device uniforms equal the host generator's, bit for bit
    for (i64 n : {i64(1), i64(1000), i64(65537)}) {
        const std::uint64_t s = rng();
        kk::DeviceBuffer<float> du(n);
        kk::philoxUniforms(du.get(), n, s, nullptr);
        auto dev = fetch(du, n);
        for (auto& e : dev)
            e = std::clamp(e, 1e-7f, 1.0f - 1e-7f);
        const auto host = philoxUniforms(n, s);
        const bool same = dev == host;
        pr.row({"uniforms", "curand", "fp32", "philox", n, 0, same ? 0.0 : 1.0, 0, 0, same,
                same ? "device == host, bit for bit" : "device and host differ"});
    }
    // The whole pipeline on the GPU against the CPU backend: FP32, same seed, a real photo.
    for (const auto& in : inputs) {
        if (in.name != "photo") continue;
        TokenSet t;
        t.n = in.n;
        t.d = in.d;
        t.x = in.x;
        MergeParams p;
        p.backend = BackendKind::Cpu;
        const MergeResult cpu = runMerge(t, p);
        for (const char* which : {"cuda-basic", "cuda"}) {
            if (o.backend != "all" && o.backend != which) continue;
            parse(which, p.backend);
            const MergeResult gpu = runMerge(t, p);
            i64 same = 0;
            double worstGap = 0, salDiff = 0;
            for (i64 i = 0; i < t.n; ++i) {
                salDiff = std::max(salDiff, double(std::abs(cpu.saliency[i] - gpu.saliency[i])));
                if (cpu.labels[i] == gpu.labels[i]) {
                    ++same;
                    continue;
                }
                // a disagreement must be a near-tie between the two groups' directions
                const double a = cosine(&t.x[i * t.d], &gpu.merged[gpu.labels[i] * t.d], t.d);
                const double b = cosine(&t.x[i * t.d], &gpu.merged[cpu.labels[i] * t.d], t.d);
                worstGap = std::max(worstGap, std::abs(a - b));
            }
            const double agree = double(same) / double(t.n);
            const bool ok = agree >= 0.995 && worstGap <= 1e-5;
            std::ostringstream note;
            note << std::fixed << std::setprecision(2) << 100 * agree
                 << "% labels agree with the CPU, " << std::scientific << std::setprecision(1)
                 << "largest disagreement gap " << worstGap << ", saliency max |diff| " << salDiff;
            pr.row({"pipeline", which, "fp32", in.name, t.n, t.d, 1 - agree, 0.005, 0, ok,
                    note.str()});
        }
        // Repeated runs of one backend replay the clustering and AR stages as CUDA graphs
        // (captured on the second run with the same shapes): replays must equal the first,
        // direct run bit for bit, also after the seed and temperature change.
        if (o.backend == "all" || o.backend == "cuda")
            for (const Precision prec : {Precision::FP32, Precision::FP16}) {
                const i64 k = std::max<i64>(1, t.n / 5);
                MergeParams q;
                q.precision = prec;
                auto backend = makeCudaBackend(true, prec);
                const MergeResult direct = backend->run(t, q, k);
                const MergeResult captured = backend->run(t, q, k);
                const MergeResult replay = backend->run(t, q, k);
                MergeParams q2 = q;
                q2.seed = q.seed + 1;
                q2.temperature = 0.5;
                const MergeResult changed = backend->run(t, q2, k);
                const MergeResult fresh = makeCudaBackend(true, prec)->run(t, q2, k);
                auto same = [](const MergeResult& a, const MergeResult& b) {
                    return a.labels == b.labels && a.merged == b.merged &&
                           a.saliency == b.saliency && a.pi == b.pi &&
                           a.layerEntropy == b.layerEntropy && a.foreground == b.foreground &&
                           a.losses.total == b.losses.total && a.groupSizes == b.groupSizes &&
                           a.refineRounds == b.refineRounds;
                };
                const bool ok = same(direct, captured) && same(direct, replay) &&
                                same(changed, fresh) && !same(direct, changed);
                const std::string note = ok ? "graph replays equal direct runs, bit for bit"
                                            : "a graph replay differs from the direct run";
                pr.row({"pipeline_graph", "cuda", toString(prec), in.name, t.n, t.d, ok ? 0.0 : 1.0,
                        0, 0, ok, note});
                // hidden states kept on the device for one revision, uploaded again for another
                TokenSet h = t;
                h.hiddenLayers = 2;
                h.hidden.resize(std::size_t(2 * t.n * t.d));
                for (std::size_t i = 0; i < h.hidden.size(); ++i)
                    h.hidden[i] = t.x[i % t.x.size()] * (i < t.x.size() ? 1.0f : -0.5f);
                h.revision = 7;
                TokenSet h2 = h;
                for (auto& e : h2.hidden)
                    e *= 1.5f;
                for (auto& e : h2.x)
                    e *= 1.5f; // stale device tokens would leave merged unchanged
                h2.revision = 8;
                const MergeResult up = backend->run(h, q, k), kept = backend->run(h, q, k);
                const MergeResult other = backend->run(h2, q, k),
                                  otherFresh = makeCudaBackend(true, prec)->run(h2, q, k);
                auto staged = [](const MergeResult& r) {
                    return std::any_of(
                        r.timings.begin(), r.timings.end(),
                        [](const StageTiming& s) { return s.stage == "upload_hidden"; });
                };
                const bool hok = same(up, kept) && same(other, otherFresh) && staged(up) &&
                                 !staged(kept) && staged(other) &&
                                 up.layerEntropy != other.layerEntropy && up.merged != other.merged;
                pr.row({"pipeline_resident", "cuda", toString(prec), in.name + " + 2 hidden", t.n,
                        t.d, hok ? 0.0 : 1.0, 0, 0, hok,
                        hok ? "kept tokens and hidden states give the uploaded result; a new "
                              "revision is uploaded"
                            : "resident tokens or hidden states change the result"});
            }
    }
}
#endif

} // namespace qmpp::check
