// The batched merge step (qmpp/batch.h), the shape a model's hook calls between blocks: every
// item of a batch as the single-sequence pipeline merges it, counts as weights, each item's own
// N, Philox offsets, a kept class token, the Gumbel scale, the baselines with counts, and every
// shape rule.
#include "qmpp/batch.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "testutil.h"

#include <cmath>
#include <cstring>

using namespace qmpp;
using namespace qmpp::test;

namespace {

// A batch on the host with its output buffers.
struct HostStep {
    TokenBatch in;
    StepParams p;
    std::vector<float> x, counts, saliency, merged, outCounts, outSal, mass;
    std::vector<std::int32_t> labels;

    HostStep(i64 b, i64 n, i64 d, unsigned seed) {
        in.b = b;
        in.n = n;
        in.d = d;
        x = randomTokens(b * n, d, seed);
        counts.assign(std::size_t(b * n), 1.0f);
        std::mt19937 g(seed + 1);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        saliency.resize(std::size_t(b * n));
        for (auto& s : saliency)
            s = u(g);
    }
    void run(BatchStages& st) {
        in.x = x.data();
        in.counts = counts.data();
        if (!in.entropy) in.saliency = saliency.data();
        const std::size_t B = std::size_t(in.b), K = std::size_t(p.kMax());
        merged.assign(B * K * std::size_t(in.d), NAN);
        outCounts.assign(B * K, NAN);
        labels.assign(B * std::size_t(in.n), 77);
        outSal.assign(B * std::size_t(in.n), NAN);
        mass.assign(B * std::size_t(in.n), NAN);
        mergeStep(st, in, p,
                  {merged.data(), outCounts.data(), labels.data(), outSal.data(), mass.data()});
    }
    // Item b's rows and labels as vectors.
    std::vector<i64> itemLabels(i64 b) const {
        const i64 n = in.itemTokens(b);
        return std::vector<i64>(labels.begin() + b * in.n, labels.begin() + b * in.n + n);
    }
    const float* itemMerged(i64 b) const { return merged.data() + b * p.kMax() * in.d; }
};

} // namespace

class TestBatch : public QObject {
    Q_OBJECT

  private slots:
    // With counts 1, no kept token, offset 0 and the seed's noise, every item merges exactly as
    // the single-sequence pipeline merges it with the same saliency and seed: same labels, same
    // merged rows, bit for bit.
    void itemsMergeLikeThePipeline_data() {
        QTest::addColumn<qlonglong>("b");
        QTest::addColumn<qlonglong>("n");
        QTest::addColumn<qlonglong>("d");
        QTest::addRow("one item") << 1ll << 64ll << 16ll;
        QTest::addRow("three items") << 3ll << 100ll << 8ll;
        QTest::addRow("odd sizes") << 2ll << 197ll << 33ll;
    }
    void itemsMergeLikeThePipeline() {
        QFETCH(qlonglong, b);
        QFETCH(qlonglong, n);
        QFETCH(qlonglong, d);
        HostStep s(b, n, d, 11);
        s.in.itemN.resize(std::size_t(b));
        for (i64 i = 0; i < b; ++i) {
            s.in.itemN[std::size_t(i)] = n - 7 * i; // each item its own N
            s.p.k.push_back(std::max<i64>(1, (n - 7 * i) / 4));
        }
        s.p.seed = 5;
        // the padding rows past an item's N must not be read
        for (i64 i = 0; i < b; ++i)
            for (i64 r = s.in.itemTokens(i); r < n; ++r) {
                s.saliency[std::size_t(i * n + r)] = 1e30f;
                for (i64 j = 0; j < d; ++j)
                    s.x[std::size_t((i * n + r) * d + j)] = 1e30f;
            }
        auto st = makeCpuBatchStages();
        s.run(*st);
        for (i64 i = 0; i < b; ++i) {
            const i64 ni = s.in.itemTokens(i), k = s.p.k[std::size_t(i)];
            // the pipeline's steps on this item alone
            const float* xi = s.x.data() + i * n * d;
            const std::vector<float> sal(s.saliency.begin() + i * n,
                                         s.saliency.begin() + i * n + ni);
            std::vector<float> pi;
            std::vector<double> keys;
            gumbelSoftmax(sal, philoxUniforms(ni, 5), 0.1, pi, keys);
            const auto fg = topK(keys, k);
            const auto mass = saliencyMass(pi, sal, 0.01);
            auto labels = clusterSeeded(xi, ni, d, mass, fg, 3);
            std::vector<float> merged;
            std::vector<i64> sizes;
            mergeWeighted(xi, ni, d, mass, labels, k, merged, sizes);
            QCOMPARE(s.itemLabels(i), labels);
            QVERIFY(std::memcmp(s.itemMerged(i), merged.data(), merged.size() * 4) == 0);
            for (i64 g = 0; g < k; ++g)
                QCOMPARE(double(s.outCounts[std::size_t(i * s.p.kMax() + g)]), double(sizes[g]));
            for (i64 g = k; g < s.p.kMax(); ++g) // rows past k_i are zero
                QCOMPARE(s.outCounts[std::size_t(i * s.p.kMax() + g)], 0.0f);
            for (i64 r = ni; r < n; ++r)
                QCOMPARE(s.labels[std::size_t(i * n + r)], std::int32_t(-1));
            QVERIFY(std::memcmp(s.mass.data() + i * n, mass.data(), mass.size() * 4) == 0);
        }
    }

    // Counts weight the merge (weights m c) and add up; a kept class token keeps row 0.
    void countsWeightAndAdd() {
        HostStep s(2, 50, 6, 3);
        std::mt19937 g(9);
        std::uniform_int_distribution<int> c(1, 9);
        for (auto& v : s.counts)
            v = float(c(g));
        s.in.keepFirst = 1;
        s.p.k = {13, 25};
        auto st = makeCpuBatchStages();
        s.run(*st);
        const i64 N = 50, D = 6, K = s.p.kMax();
        for (i64 b = 0; b < 2; ++b) {
            QCOMPARE(s.labels[std::size_t(b * N)], std::int32_t(0)); // the class token
            for (i64 j = 0; j < D; ++j)
                QCOMPARE(s.merged[std::size_t(b * K * D + j)], s.x[std::size_t(b * N * D + j)]);
            QCOMPARE(s.outCounts[std::size_t(b * K)], s.counts[std::size_t(b * N)]);
            QCOMPARE(s.outSal[std::size_t(b * N)], 0.0f);
            std::vector<double> ref(std::size_t(K * D), 0.0), w(std::size_t(K), 0.0),
                cnt(std::size_t(K), 0.0);
            for (i64 i = 1; i < N; ++i) {
                const i64 l = s.labels[std::size_t(b * N + i)];
                QVERIFY(l >= 1 && l < s.p.k[std::size_t(b)]);
                const double c = s.counts[std::size_t(b * N + i)];
                const double wi = double(s.mass[std::size_t(b * N + i)]) * c;
                w[l] += wi;
                cnt[l] += c;
                for (i64 j = 0; j < D; ++j)
                    ref[l * D + j] += wi * s.x[std::size_t((b * N + i) * D + j)];
            }
            for (i64 l = 1; l < s.p.k[std::size_t(b)]; ++l) {
                QVERIFY(w[l] > 0); // no empty group
                QCOMPARE(double(s.outCounts[std::size_t(b * K + l)]), cnt[l]);
                for (i64 j = 0; j < D; ++j)
                    QVERIFY(std::abs(s.merged[std::size_t(b * K * D + l * D + j)] -
                                     ref[l * D + j] / w[l]) < 1e-5);
            }
            // merged rows keep the order of their first members
            i64 last = 0;
            for (i64 i = 1; i < N; ++i) {
                const i64 l = s.labels[std::size_t(b * N + i)];
                QVERIFY(l <= last + 1);
                last = std::max(last, l);
            }
        }
    }

    // Item i draws its uniforms at its own offset: the same item at offset o merges as the
    // pipeline does with those uniforms supplied.
    void offsetsAndGumbelScale() {
        HostStep s(2, 40, 5, 21);
        // both items the same tokens and saliency
        std::copy_n(s.x.begin(), 40 * 5, s.x.begin() + 40 * 5);
        std::copy_n(s.saliency.begin(), 40, s.saliency.begin() + 40);
        s.p.k = {10, 10};
        s.p.seed = 8;
        s.p.offset = {0, 40};
        auto st = makeCpuBatchStages();
        s.run(*st);
        QVERIFY(s.itemLabels(0) != s.itemLabels(1)); // different noise
        TokenSet t = tokenSet(std::vector<float>(s.x.begin(), s.x.begin() + 200), 40, 5);
        std::vector<float> sal(s.saliency.begin(), s.saliency.begin() + 40);
        std::vector<float> pi;
        std::vector<double> keys;
        gumbelSoftmax(sal, philoxUniforms(40, 8, 40), 0.1, pi, keys);
        const auto fg = topK(keys, 10);
        auto labels = clusterSeeded(t.x.data(), 40, 5, saliencyMass(pi, sal, 0.01), fg, 3);
        std::vector<float> merged;
        std::vector<i64> sizes;
        mergeWeighted(t.x.data(), 40, 5, saliencyMass(pi, sal, 0.01), labels, 10, merged, sizes);
        QCOMPARE(s.itemLabels(1), labels);
        // G = 0: no noise, so any seed and offset give the same merge, founded on top-K of s
        s.p.gumbelScale = 0;
        s.run(*st);
        const auto noNoise = s.itemLabels(0);
        QCOMPARE(s.itemLabels(1), noNoise);
        s.p.seed = 99;
        s.run(*st);
        QCOMPARE(s.itemLabels(0), noNoise);
    }

    // Saliency from the block's attention entropies: s = 1 - minmax(H) over the mergeable tokens.
    void saliencyFromEntropies() {
        HostStep s(1, 30, 4, 2);
        std::vector<float> h(30);
        for (int i = 0; i < 30; ++i)
            h[std::size_t(i)] = float(std::sin(i) + 2);
        h[0] = 1e6f; // the kept class token's entropy is not in the min-max
        s.in.entropy = h.data();
        s.in.keepFirst = 1;
        s.p.k = {8};
        auto st = makeCpuBatchStages();
        s.run(*st);
        float lo = 1e9f, hi = -1e9f;
        for (int i = 1; i < 30; ++i) {
            lo = std::min(lo, h[std::size_t(i)]);
            hi = std::max(hi, h[std::size_t(i)]);
        }
        for (int i = 1; i < 30; ++i)
            QVERIFY(std::abs(s.outSal[std::size_t(i)] -
                             (1 - (h[std::size_t(i)] - lo) / (hi - lo))) < 1e-6);
    }

    // ToMe's round: a class token that never merges and stays first, counts as sizes, the merge
    // a count-weighted mean, and (with counts 1 and no class token) the same partition as the
    // engine's ToMe baseline.
    void tomeRound() {
        HostStep s(1, 41, 7, 17);
        s.p.method = Method::ToMe;
        s.p.k = {41 - 20};
        auto st = makeCpuBatchStages();
        s.run(*st);
        std::vector<float> merged;
        std::vector<i64> sizes, survivors;
        const auto ref = tomeMerge(s.x.data(), 41, 7, 21, merged, sizes, survivors);
        QVERIFY(samePartition(s.itemLabels(0), ref));
        // with a class token and counts
        HostStep c(2, 41, 7, 17);
        std::mt19937 g(4);
        std::uniform_int_distribution<int> cd(1, 5);
        for (auto& v : c.counts)
            v = float(cd(g));
        c.p.method = Method::ToMe;
        c.in.keepFirst = 1;
        c.p.k = {41 - 20, 41 - 3};
        c.run(*st);
        const i64 K = c.p.kMax();
        for (i64 b = 0; b < 2; ++b) {
            QCOMPARE(c.labels[std::size_t(b * 41)], std::int32_t(0));
            std::vector<double> sum(std::size_t(K * 7), 0.0), cnt(std::size_t(K), 0.0);
            for (i64 i = 0; i < 41; ++i) {
                const i64 l = c.labels[std::size_t(b * 41 + i)];
                QVERIFY(l >= 0 && l < c.p.k[std::size_t(b)]);
                QVERIFY(i == 0 || l != 0);
                cnt[l] += c.counts[std::size_t(b * 41 + i)];
                for (i64 j = 0; j < 7; ++j)
                    sum[l * 7 + j] +=
                        c.counts[std::size_t(b * 41 + i)] * c.x[std::size_t((b * 41 + i) * 7 + j)];
            }
            for (i64 l = 0; l < c.p.k[std::size_t(b)]; ++l) {
                QCOMPARE(double(c.outCounts[std::size_t(b * K + l)]), cnt[l]);
                for (i64 j = 0; j < 7; ++j)
                    QVERIFY(std::abs(c.merged[std::size_t((b * K + l) * 7 + j)] -
                                     sum[l * 7 + j] / cnt[l]) < 1e-5);
            }
        }
    }

    // Pruning keeps the k largest saliencies (top-K) or uniforms (random) unchanged, in order,
    // with their counts; the others are dropped (-1).
    void pruning() {
        for (const Method m : {Method::TopK, Method::Random}) {
            HostStep s(1, 20, 3, 6);
            for (int i = 0; i < 20; ++i)
                s.counts[std::size_t(i)] = float(i + 1);
            s.p.method = m;
            s.p.k = {6};
            s.p.seed = 3;
            s.in.keepFirst = 1;
            auto st = makeCpuBatchStages();
            s.run(*st);
            std::vector<double> keys;
            if (m == Method::TopK)
                keys.assign(s.saliency.begin() + 1, s.saliency.end());
            else {
                const auto u = philoxUniforms(19, 3);
                keys.assign(u.begin(), u.end());
            }
            const auto keep = topK(keys, 5);
            QCOMPARE(s.labels[0], std::int32_t(0));
            for (int g = 0; g < 5; ++g) {
                QCOMPARE(s.labels[std::size_t(keep[g] + 1)], std::int32_t(g + 1));
                QCOMPARE(s.outCounts[std::size_t(g + 1)], float(keep[g] + 2));
                QCOMPARE(s.merged[std::size_t((g + 1) * 3)], s.x[std::size_t((keep[g] + 1) * 3)]);
            }
            int dropped = 0;
            for (int i = 0; i < 20; ++i)
                dropped += s.labels[std::size_t(i)] == -1;
            QCOMPARE(dropped, 14);
        }
    }

    // Every shape rule: a clear UsageError naming the problem, before anything is written.
    void shapeRules_data() {
        QTest::addColumn<int>("which");
        QTest::addColumn<QString>("message");
        const char* rows[][2] = {{"batch of zero items", "every side must be at least 1"},
                                 {"zero tokens", "every side must be at least 1"},
                                 {"zero dimension", "every side must be at least 1"},
                                 {"itemN of the wrong length", "itemN has 1 entries for B = 2"},
                                 {"an item longer than N", "item 1 has 11 tokens"},
                                 {"k of the wrong length", "k has 1 entries"},
                                 {"k larger than n", "k = 11 must be in 1..10"},
                                 {"k zero", "k = 0 must be in 1..10"},
                                 {"k no more than the kept", "k = 1 must be in 2..10"},
                                 {"offsets of the wrong length", "offset has 3 entries"},
                                 {"ToMe past half", "ToMe merges at most 5"},
                                 {"no saliency", "quickmerge needs a saliency"},
                                 {"device memory on the CPU", "device memory"},
                                 {"FP16 on the CPU", "FP32 tokens only"},
                                 {"NaN temperature", "temperature"},
                                 {"epsilon above 1", "epsilon"},
                                 {"negative Gumbel scale", "Gumbel scale"},
                                 {"D over the limit", "over the limit"}};
        int i = 0;
        for (auto& r : rows)
            QTest::addRow("%s", r[0]) << i++ << QString(r[1]);
    }
    void shapeRules() {
        QFETCH(int, which);
        QFETCH(QString, message);
        HostStep s(2, 10, 4, 1);
        s.p.k = {3, 3};
        switch (which) {
        case 0:
            s.in.b = 0;
            break;
        case 1:
            s.in.n = 0;
            break;
        case 2:
            s.in.d = 0;
            break;
        case 3:
            s.in.itemN = {10};
            break;
        case 4:
            s.in.itemN = {10, 11};
            break;
        case 5:
            s.p.k = {3};
            break;
        case 6:
            s.p.k = {3, 11};
            break;
        case 7:
            s.p.k = {0, 3};
            break;
        case 8:
            s.in.keepFirst = 1;
            s.p.k = {1, 3};
            break;
        case 9:
            s.p.offset = {1, 2, 3};
            break;
        case 10:
            s.p.method = Method::ToMe;
            s.p.k = {4, 5};
            break;
        case 11:
            s.saliency.clear();
            s.in.entropy = nullptr;
            break;
        case 12:
            s.in.memory = Memory::Device;
            break;
        case 13:
            s.in.precision = Precision::FP16;
            break;
        case 14:
            s.p.temperature = NAN;
            break;
        case 15:
            s.p.epsilon = 1.5;
            break;
        case 16:
            s.p.gumbelScale = -1;
            break;
        case 17:
            s.in.d = kMaxTokenDim + 1;
            break;
        }
        auto st = makeCpuBatchStages();
        std::vector<float> merged(1000, 5.0f), counts(100, 5.0f);
        std::vector<std::int32_t> labels(100, 5);
        s.in.x = s.x.data();
        s.in.saliency = s.saliency.empty() ? nullptr : s.saliency.data();
        try {
            mergeStep(*st, s.in, s.p,
                      {merged.data(), counts.data(), labels.data(), nullptr, nullptr});
            QFAIL("no error");
        } catch (const UsageError& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        QCOMPARE(merged[0], 5.0f); // nothing written
        QCOMPARE(labels[0], std::int32_t(5));
    }
};

QTEST_GUILESS_MAIN(TestBatch)
#include "tst_batch.moc"
