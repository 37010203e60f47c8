// `qmpp check`: every kernel (and the CPU backend's steps) against float64 references. The
// references and checks live one operation per file in check/; this file picks the inputs and
// runs them in order. Tolerances are explained in check/harness.h.
#include "check/harness.h"
#include "qmpp/bench.h"
#include "qmpp/engine.h"
#include "qmpp/io.h"

#include <random>

namespace qmpp {

using namespace check;

namespace {

#ifdef QMPP_HAVE_CUDA
// Every kernel on one input in one version and precision; `rows`: the large case, which checks
// the entropy of these rows only.
void checkKernels(const Input& in, kk::Version v, kk::Prec p, std::mt19937_64& rng, Printer& pr,
                  const std::vector<i64>* rows = nullptr) {
    KernelCase c(in, v, p, rng, pr);
    c.checkEntropyGramKernel(rows);
    if (rows) return;
    c.checkEntropyMapsKernel();
    c.checkSaliencyKernel();
    c.checkCosineKernel();
    c.checkGumbelKernels();
    c.checkTopKKernel();
    c.makeGroups();
    c.checkCentresKernel();
    c.checkAssignKernel();
    c.checkMergeKernel();
    c.checkArKernel();
    c.checkMetricsKernel();
}
#endif

} // namespace

std::vector<CheckRow> runChecks(const CheckOptions& o, std::ostream& out) {
    const std::uint64_t seed =
        o.seed ? o.seed : (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    out << "qmpp check: seed " << seed << (o.quick ? " (quick)" : "") << "\n";
    std::mt19937_64 rng(seed);
    std::vector<Input> inputs;
    const std::vector<i64> sizes =
        o.quick ? std::vector<i64>{1, 37, 130} : std::vector<i64>{1, 77, 300, 1000};
    const i64 dim = o.quick ? 24 : 64;
    for (i64 n : sizes)
        inputs.push_back({"random", n, dim, syntheticTokens(n, dim, rng())});
    // a D that is no multiple of 8 (unaligned rows) and N beyond one 128-token tile
    inputs.push_back({"random, odd D", 150, 45, syntheticTokens(150, 45, rng())});
    // aligned rows whose D ends in a partial pipeline stage (64 and 128 elements a stage), over
    // two column panels of 128 x 256 tiles
    inputs.push_back({"random, D = 200", 300, 200, syntheticTokens(300, 200, rng())});
    if (!o.photoTokens.empty()) {
        const NdArray a = readNpy(o.photoTokens);
        if (a.ndim() != 2) throw std::runtime_error(o.photoTokens + ": expected [N, D] tokens");
        Input ph{"photo", a.shape[0], a.shape[1], a.toFloat()};
        if (o.quick) { // the first 128 tokens keep sanitizer runs short
            ph.n = std::min<i64>(ph.n, 128);
            ph.x.resize(static_cast<std::size_t>(ph.n * ph.d));
        }
        inputs.push_back(std::move(ph));
    }
    Printer pr(out);
    std::string why;
    const bool gpu = gpuAvailable(&why);
    if (o.backend == "all" || o.backend == "cpu" || !gpu) {
        if (!gpu) out << "no GPU: " << why << "; checking the CPU backend's steps\n";
        for (const auto& in : inputs) {
            checkEntropyCpu(in, pr);
            checkArCpu(in, checkMergeCpu(in, rng, pr), pr);
        }
    }
#ifdef QMPP_HAVE_CUDA
    if (gpu && o.backend != "cpu") {
        checkPipeline(inputs, o, rng, pr);
        checkStep(inputs, o, rng, pr);
        std::vector<kk::Version> versions;
        if (o.backend != "cuda") versions.push_back(kk::Version::Basic);
        if (o.backend != "cuda-basic") versions.push_back(kk::Version::Optimized);
        for (auto v : versions)
            for (auto p : {kk::Prec::F32, kk::Prec::F16}) {
                for (const auto& in : inputs)
                    checkKernels(in, v, p, rng, pr);
                if (!o.quick) { // N = 65,536: a random subset of rows against the reference
                    const Input big{"random", 65536, 64, syntheticTokens(65536, 64, rng())};
                    std::vector<i64> rows(256);
                    for (auto& r : rows)
                        r = static_cast<i64>(rng() % 65536);
                    checkKernels(big, v, p, rng, pr, &rows);
                }
            }
    }
#endif
    int passed = 0, failed = 0;
    for (const auto& r : pr.rows())
        (r.pass ? passed : failed)++;
    out << passed << " passed, " << failed << " failed\n";
    return pr.rows();
}

} // namespace qmpp
