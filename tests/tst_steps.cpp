// Each pipeline step against small cases computed by hand.
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "testutil.h"

#include <cmath>
#include <cstring>
#include <numeric>
#ifdef QMPP_TEST_CURAND
#include <curand.h>
#endif

using namespace qmpp;
using namespace qmpp::test;

#ifdef QMPP_TEST_CURAND
namespace {
// cuRAND's own host Philox4_32_10 generator: out.size() uniforms of `seed` from `offset`.
bool curandHostUniforms(std::uint64_t seed, std::uint64_t offset, std::vector<float>& out) {
    curandGenerator_t gen = nullptr;
    if (curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
        return false;
    const bool ok = curandSetPseudoRandomGeneratorSeed(gen, seed) == CURAND_STATUS_SUCCESS &&
                    curandSetGeneratorOffset(gen, offset) == CURAND_STATUS_SUCCESS &&
                    curandGenerateUniform(gen, out.data(), out.size()) == CURAND_STATUS_SUCCESS;
    curandDestroyGenerator(gen);
    return ok;
}
} // namespace
#endif

class TestSteps : public QObject {
    Q_OBJECT
  private slots:
    void entropyOfUniformAndOneHotMaps() {
        const i64 n = 5;
        // layer 0: uniform attention (entropy ln N); layer 1: one-hot rows (entropy 0),
        // unnormalized on purpose (rows are renormalized).
        std::vector<float> a(2 * n * n, 0.0f);
        for (i64 i = 0; i < n * n; ++i)
            a[i] = 3.0f;
        for (i64 i = 0; i < n; ++i)
            a[n * n + i * n + (i + 2) % n] = 0.5f;
        const auto h = entropyMaps(a.data(), 2, 1, n);
        for (i64 i = 0; i < n; ++i) {
            QVERIFY(std::abs(h[i] - std::log(double(n))) < 1e-12);
            QCOMPARE(h[n + i], 0.0);
        }
        // two heads averaged: (ln N + 0) / 2
        const auto h2 = entropyMaps(a.data(), 1, 2, n);
        QVERIFY(std::abs(h2[0] - 0.5 * std::log(double(n))) < 1e-12);
    }

    void entropyStreamingMatchesDirect() {
        const i64 n = 37, d = 11;
        const auto x = randomTokens(n, d, 7);
        const auto h = entropyHidden(x.data(), 1, n, d);
        for (i64 i = 0; i < n; ++i) {
            std::vector<double> z(n);
            for (i64 j = 0; j < n; ++j) {
                double s = 0;
                for (i64 k = 0; k < d; ++k)
                    s += double(x[i * d + k]) * x[j * d + k];
                z[j] = s / std::sqrt(double(d));
            }
            const double mx = *std::max_element(z.begin(), z.end());
            double sum = 0;
            for (double v : z)
                sum += std::exp(v - mx);
            double e = 0;
            for (double v : z) {
                const double p = std::exp(v - mx) / sum;
                e -= p * std::log(p);
            }
            QVERIFY2(std::abs(h[i] - e) < 1e-5 * std::max(1.0, e),
                     qPrintable(QString::number(h[i] - e)));
        }
    }

    void identicalTokensGiveLnN() {
        // Q = K = identical rows: every score equal, attention uniform, entropy ln N.
        const i64 n = 9, d = 4;
        std::vector<float> x(n * d, 0.5f);
        const auto h = entropyMultiScale(x.data(), n, d, 3);
        for (double v : h)
            QVERIFY(std::abs(v - std::log(double(n))) < 1e-9);
    }

    void multiScaleFactors() {
        QCOMPARE(multiScaleFactor(0, 1), 1.0);
        QVERIFY(std::abs(multiScaleFactor(0, 5) - 0.25) < 1e-15);
        QVERIFY(std::abs(multiScaleFactor(2, 5) - 1.0) < 1e-15);
        QVERIFY(std::abs(multiScaleFactor(4, 5) - 4.0) < 1e-15);
        // geometric: constant ratio
        const double r = multiScaleFactor(1, 5) / multiScaleFactor(0, 5);
        QVERIFY(std::abs(multiScaleFactor(3, 5) / multiScaleFactor(2, 5) - r) < 1e-12);
    }

    void saliencyNormalization() {
        // layer 0: entropies 1, 2, 3 -> minmax 0, .5, 1; layer 1 constant -> 0.
        const std::vector<double> h = {1, 2, 3, 5, 5, 5};
        const auto s = saliencyFromEntropy(h, 2, 3);
        QCOMPARE(s[0], 1.0f);
        QCOMPARE(s[1], float(1.0 - 0.25));
        QCOMPARE(s[2], 0.5f);
        const auto one = saliencyFromEntropy({2, 2, 2}, 1, 3);
        for (float v : one)
            QCOMPARE(v, 1.0f); // a constant layer normalizes to 0
    }

    void philoxUniforms_data() {
        QTest::addColumn<qulonglong>("seed");
        QTest::addColumn<qlonglong>("n");
        // sizes around cuRAND's 2^18-number layout (65,536 streams of 4), odd tails, seeds whose
        // high word matters
        for (qulonglong seed : {0ull, 1234ull, 0x123456789abcull, ~0ull})
            for (qlonglong n : {1ll, 3ll, 5ll, 1000ll, 262143ll, 262145ll, 600001ll})
                QTest::addRow("seed %llx n %lld", seed, n) << seed << n;
    }
    void philoxUniforms() {
        QFETCH(qulonglong, seed);
        QFETCH(qlonglong, n);
        std::vector<float> ours(static_cast<std::size_t>(n));
        philoxGenerate(seed, ours.data(), n);
        // ENV.md: cuRAND's host and device Philox4_32_10, seed 1234, offset 0.
        if (seed == 1234) {
            const double ref[4] = {0.127208, 0.853469, 0.265649, 0.796055};
            for (int i = 0; i < 4 && i < n; ++i)
                QVERIFY(std::abs(ours[i] - ref[i]) < 5e-7);
        }
        // a shorter run is a prefix of a longer one (the layout does not depend on n)
        std::vector<float> longer(static_cast<std::size_t>(n) + 7);
        philoxGenerate(seed, longer.data(), n + 7);
        QVERIFY(std::equal(ours.begin(), ours.end(), longer.begin()));
        const auto clamped = qmpp::philoxUniforms(n, seed);
        for (float v : clamped)
            QVERIFY(v >= 1e-7f && v <= 1.0f - 1e-7f);
#ifdef QMPP_TEST_CURAND
        // bit for bit against cuRAND's own host generator
        std::vector<float> theirs(static_cast<std::size_t>(n));
        QVERIFY(curandHostUniforms(seed, 0, theirs));
        for (std::size_t i = 0; i < theirs.size(); ++i)
            if (std::memcmp(&theirs[i], &ours[i], sizeof(float)) != 0)
                QFAIL(qPrintable(QString("index %1: cuRAND %2, ours %3")
                                     .arg(i)
                                     .arg(double(theirs[i]), 0, 'g', 9)
                                     .arg(double(ours[i]), 0, 'g', 9)));
#else
        if (seed == 0 && n == 1)
            qInfo("cuRAND not found at build time: checked against cuRAND's published values only");
#endif
    }

    // An offset starts the output at that number of the sequence: a model's blocks and items draw
    // from one seed without sharing noise (SPEC's offsets), as curandSetGeneratorOffset does.
    void philoxOffsets_data() {
        QTest::addColumn<qulonglong>("offset");
        QTest::addColumn<qlonglong>("n");
        for (qulonglong off : {1ull, 3ull, 4ull, 197ull, 262143ull, 262149ull, 1000003ull})
            for (qlonglong n : {1ll, 7ll, 196ll, 300000ll})
                QTest::addRow("offset %llu n %lld", off, n) << off << n;
    }
    void philoxOffsets() {
        QFETCH(qulonglong, offset);
        QFETCH(qlonglong, n);
        const qulonglong seed = 0x9e3779b97f4a7c15ull;
        std::vector<float> whole(static_cast<std::size_t>(offset + n)),
            part(static_cast<std::size_t>(n));
        philoxGenerate(seed, whole.data(), i64(whole.size()));
        philoxGenerate(seed, part.data(), n, offset);
        QVERIFY(std::memcmp(part.data(), whole.data() + offset, part.size() * 4) == 0);
#ifdef QMPP_TEST_CURAND
        std::vector<float> theirs(static_cast<std::size_t>(n));
        QVERIFY(curandHostUniforms(seed, offset, theirs));
        QVERIFY(std::memcmp(part.data(), theirs.data(), part.size() * 4) == 0);
#endif
    }

    // A machine with no NVIDIA driver at all hears "no GPU found", not the runtime's "CUDA
    // driver version is insufficient"; an old driver is told to update; every case says why.
    void noGpuReasons() {
        QCOMPARE(
            QString::fromStdString(noGpuReason(35, false, "CUDA driver version is insufficient")),
            QString("no GPU found (no NVIDIA driver is installed)"));
        QCOMPARE(QString::fromStdString(noGpuReason(100, false, "no CUDA-capable device")),
                 QString("no GPU found (no NVIDIA driver is installed)"));
        QCOMPARE(QString::fromStdString(noGpuReason(100, true, "no CUDA-capable device")),
                 QString("no GPU found (the NVIDIA driver sees none)"));
        QVERIFY(QString::fromStdString(noGpuReason(35, true, "insufficient")).contains("update"));
        QVERIFY(QString::fromStdString(noGpuReason(999, true, "unknown error"))
                    .contains("unknown error"));
        std::string why;
        if (!gpuAvailable(&why)) { // this machine's own reason is one of them
            QVERIFY(!why.empty());
            QVERIFY(why.find("insufficient") == std::string::npos ||
                    why.find("update") != std::string::npos);
        }
    }

    void gumbelSoftmaxAndTopK() {
        const std::vector<float> s = {0.1f, 0.9f, 0.5f, 0.5f, 0.0f};
        const std::vector<float> u = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
        std::vector<float> pi;
        std::vector<double> keys;
        gumbelSoftmax(s, u, 0.5, pi, keys);
        const double g = -std::log(-std::log(0.5));
        double sum = 0;
        for (float p : pi)
            sum += p;
        QVERIFY(std::abs(sum - 1.0) < 1e-6);
        double z = 0;
        for (float v : s)
            z += std::exp((v + g) / 0.5);
        for (int i = 0; i < 5; ++i) {
            QVERIFY(std::abs(keys[i] - (s[i] + g)) < 1e-12);
            QVERIFY(std::abs(pi[i] - std::exp((s[i] + g) / 0.5) / z) < 1e-6);
        }
        // top-2: index 1, then the tie 2/3 resolves to the lower index 2; returned ascending
        QCOMPARE(topK(keys, 2), (std::vector<i64>{1, 2}));
        QCOMPARE(topK(keys, 5), (std::vector<i64>{0, 1, 2, 3, 4}));
        // tiny temperature: pi becomes one-hot on the largest key
        gumbelSoftmax(s, u, 1e-4, pi, keys);
        QVERIFY(pi[1] > 0.999f);
    }

    void massFormula() {
        const auto m = saliencyMass({0.5f, 0.0f, 1.0f}, {0.8f, 0.3f, 0.2f}, 0.01);
        QVERIFY(std::abs(m[0] - (0.5 * 0.8 + 0.5 * 0.01)) < 1e-7);
        QVERIFY(std::abs(m[1] - 0.01) < 1e-7);
        QVERIFY(std::abs(m[2] - 0.2) < 1e-7);
    }

    void weightedMergeAndOrder() {
        // 5 tokens, D = 2; group ids deliberately not in first-appearance order.
        const std::vector<float> x = {1, 0, 0, 1, 3, 0, 0, 3, 2, 2};
        const std::vector<float> m = {1, 2, 3, 0.5f, 0};
        std::vector<i64> labels = {2, 0, 2, 0, 1};
        std::vector<float> merged;
        std::vector<i64> sizes;
        mergeWeighted(x.data(), 5, 2, m, labels, 3, merged, sizes);
        // groups ordered by first token: {0,2} -> 0, {1,3} -> 1, {4} -> 2
        QCOMPARE(labels, (std::vector<i64>{0, 1, 0, 1, 2}));
        QCOMPARE(sizes, (std::vector<i64>{2, 2, 1}));
        QVERIFY(std::abs(merged[0] - (1 * 1 + 3 * 3) / 4.0) < 1e-6); // (m0 x0 + m2 x2) / (m0 + m2)
        QVERIFY(std::abs(merged[1] - 0.0) < 1e-6);
        QVERIFY(std::abs(merged[2] - 0.0) < 1e-6);
        QVERIFY(std::abs(merged[3] - (2 * 1 + 0.5 * 3) / 2.5) < 1e-6);
        // zero total mass: plain mean
        QCOMPARE(merged[4], 2.0f);
        QCOMPARE(merged[5], 2.0f);
    }

    void seededFoundersKeepTheirGroups() {
        // Founders 0, 1, 3 give centres (1,0), (0,1), (1,0). Token 3 ties centres 0 and 2 but
        // founded group 2, so it stays; token 2 ties them too and takes the lower centre.
        const std::vector<float> x = {1, 0, 0, 1, 0.9f, 0.1f, 2, 0, 0.1f, 0.9f};
        const std::vector<float> mass(5, 1.0f);
        int rounds = -1;
        const auto labels = clusterSeeded(x.data(), 5, 2, mass, {0, 1, 3}, 3, &rounds);
        QCOMPARE(labels, (std::vector<i64>{0, 1, 0, 2, 1}));
        QCOMPARE(rounds, 1); // the first refinement changes nothing: converged
        const auto noRefine = clusterSeeded(x.data(), 5, 2, mass, {0, 1, 3}, 0, &rounds);
        QCOMPARE(noRefine, labels);
        QCOMPARE(rounds, 0);
    }

    void arLossByHand() {
        // D = 2, K = 3 merged tokens, heads with a known closed form.
        ArHeads h;
        h.d = 2;
        const i64 hd = ArHeads::kHidden;
        auto zeros = [](i64 n) { return std::vector<float>(n, 0.0f); };
        h.fw1 = zeros(hd * 2);
        h.fb1 = zeros(hd);
        h.fw2 = zeros(2 * hd);
        h.fb2 = zeros(2);
        // forward: hidden0 = relu(v0), out = (hidden0, 0) + (0, 1)
        h.fw1[0] = 1;
        h.fw2[0 * hd + 0] = 1;
        h.fb2[1] = 1;
        h.bw1 = h.fw1;
        h.bb1 = h.fb1;
        h.bw2 = zeros(2 * hd);
        h.bb2 = {-1, 0}; // backward head: constant (-1, 0)
        const std::vector<float> m = {1, 2, 3, 4, -5, 6};
        Losses l;
        std::vector<double> ef, eb;
        arLoss(m, 3, 2, h, l, ef, eb);
        // forward t=0: P0 = (1,2) -> f = (1,1) vs x1 = (3,4): ((1-3)^2 + (1-4)^2)/2 = 6.5
        // forward t=1: P1 = (2,3) -> f = (2,1) vs x2 = (-5,6): (49 + 25)/2 = 37
        QVERIFY(std::abs(ef[0] - 6.5) < 1e-9);
        QVERIFY(std::abs(ef[1] - 37.0) < 1e-9);
        // backward: f = (-1, 0) vs x0 = (1,2): (4+4)/2 = 4; vs x1 = (3,4): (16+16)/2 = 16
        QVERIFY(std::abs(eb[0] - 4.0) < 1e-9);
        QVERIFY(std::abs(eb[1] - 16.0) < 1e-9);
        QVERIFY(std::abs(l.arForward - (6.5 + 37) / 2) < 1e-9);
        QVERIFY(std::abs(l.arBackward - 10.0) < 1e-9);
        QVERIFY(std::abs(l.ar - (21.75 + 10.0)) < 1e-9);
        arLoss({1, 2}, 1, 2, h, l, ef, eb); // K = 1: zero loss, no positions
        QCOMPARE(l.ar, 0.0);
        QVERIFY(ef.empty());
    }

    void defaultHeadsAreSeededAndBounded() {
        const auto a = defaultArHeads(8), b = defaultArHeads(8);
        QCOMPARE(a->fw1, b->fw1);
        QCOMPARE(a->fw1.size(), std::size_t(256 * 8));
        for (float w : a->fw1)
            QVERIFY(std::abs(w) <= 1.0f / std::sqrt(8.0f));
        for (float w : a->fw2)
            QVERIFY(std::abs(w) <= 1.0f / 16.0f);
        QVERIFY(a->fw1 != a->bw1);
    }

    void normMassAndFidelity() {
        // norms 3, 4, 0, 1 (sum 8): K = 1 -> top 1 = 4/8; K = 5 -> floor(N/2) = 2 -> (4+3)/8
        const std::vector<float> x = {3, 0, 0, 4, 0, 0, 1, 0};
        QCOMPARE(normMassTopK(x.data(), 4, 2, 1), 0.5);
        QCOMPARE(normMassTopK(x.data(), 4, 2, 5), 7.0 / 8.0);
        // threshold (1-g)^2 ||X||_F^2 = 0.25 * 26 = 6.5; residuals padded with zeros
        const std::vector<float> merged = {0, 0};
        // r = [(9+0)/2, (0+16)/2, 0, 0.5] = [4.5, 8, 0, .5] -> max(0, r - 6.5) = [0, 1.5, 0, 0]
        QVERIFY(std::abs(fidelityLoss(x.data(), 4, 2, merged, 1, 0.5) - 1.5 / 4) < 1e-12);
        QCOMPARE(fidelityLoss(x.data(), 4, 2, merged, 1, 0.0), 0.0); // threshold 26
    }

    void resolveKAndValidation_data() {
        QTest::addColumn<i64>("n");
        QTest::addColumn<i64>("k");
        QTest::addColumn<double>("budget");
        QTest::addColumn<i64>("expect");
        QTest::newRow("budget") << i64(196) << i64(0) << 0.2 << i64(39);
        QTest::newRow("floor to 1") << i64(3) << i64(0) << 0.1 << i64(1);
        QTest::newRow("full") << i64(10) << i64(0) << 1.0 << i64(10);
        QTest::newRow("explicit") << i64(10) << i64(4) << 0.2 << i64(4);
    }
    void resolveKAndValidation() {
        QFETCH(i64, n);
        QFETCH(i64, k);
        QFETCH(double, budget);
        QFETCH(i64, expect);
        MergeParams p;
        p.k = k;
        p.budget = budget;
        QCOMPARE(resolveK(n, p), expect);
    }

    void validationErrors() {
        auto t = tokenSet(randomTokens(6, 3, 1), 6, 3);
        MergeParams p;
        auto bad = [&](auto mutate, bool usage) {
            MergeParams q = p;
            TokenSet u = t;
            mutate(q, u);
            try {
                validate(u, q);
                return false;
            } catch (const UsageError&) {
                return usage;
            } catch (const InputError&) {
                return !usage;
            }
        };
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.k = 7; }, true));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.k = -1; }, true));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.budget = 0; }, true));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.budget = 1.5; }, true));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.temperature = 0; }, true));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.gamma = 2; }, true));
        QVERIFY(bad(
            [](MergeParams& q, TokenSet&) {
                q.backend = BackendKind::Cpu;
                q.precision = Precision::FP16;
            },
            true));
        QVERIFY(bad([](MergeParams&, TokenSet& u) { u.x[7] = NAN; }, false));
        QVERIFY(bad([](MergeParams&, TokenSet& u) { u.x[2] = INFINITY; }, false));
        QVERIFY(bad([](MergeParams& q, TokenSet&) { q.uniforms = {0.5f}; }, false));
        QVERIFY(bad(
            [](MergeParams&, TokenSet& u) {
                u.hidden.assign(2 * 6 * 4, 1.0f);
                u.hiddenLayers = 2;
            },
            false));
        QVERIFY(bad(
            [](MergeParams&, TokenSet& u) {
                u.attention.assign(36, 1.0f);
                u.attnLayers = 1;
                u.attnHeads = 1;
                u.attention[3] = -1;
            },
            false));
        QVERIFY(bad(
            [](MergeParams&, TokenSet& u) {
                u.attention.assign(36, 1.0f);
                u.attnLayers = 1;
                u.attnHeads = 1;
                for (int j = 0; j < 6; ++j)
                    u.attention[12 + j] = 0;
            },
            false));
        QVERIFY(bad(
            [](MergeParams&, TokenSet& u) {
                u.n = 0;
                u.x.clear();
            },
            false));
        // the messages name the problem
        try {
            TokenSet u = t;
            u.x[7] = NAN;
            validate(u, p);
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).contains("row 2, column 1"), e.what());
        }
        validate(t, p); // and the good case passes
    }
};

QTEST_GUILESS_MAIN(TestSteps)
#include "tst_steps.moc"
