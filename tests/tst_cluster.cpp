// Clustering: the exact methods against a known dendrogram and against the real scikit-learn.
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"
#include "testutil.h"

#include <QDir>
#include <cmath>
#include <set>

using namespace qmpp;
using namespace qmpp::test;

class TestCluster : public QObject {
    Q_OBJECT
  private:
    static std::vector<float> angles(std::initializer_list<double> degrees) {
        std::vector<float> x;
        for (double a : degrees) {
            x.push_back(float(std::cos(a * M_PI / 180)));
            x.push_back(float(std::sin(a * M_PI / 180)));
        }
        return x;
    }

  private slots:
    void knownDendrogram() {
        // Directions at 0, 5, 12, 90, 97 and 200 degrees. Average linkage on 1 - cos merges
        // {0,5}, then 12, then {90,97}; the last two joins are {0..97} and finally 200.
        const auto x = angles({0, 5, 12, 90, 97, 200});
        QVERIFY(samePartition(clusterAgglomerative(x.data(), 6, 2, 3), {0, 0, 0, 1, 1, 2}));
        QVERIFY(samePartition(clusterAgglomerative(x.data(), 6, 2, 2), {0, 0, 0, 0, 0, 1}));
        QVERIFY(samePartition(clusterAgglomerative(x.data(), 6, 2, 4), {0, 0, 1, 2, 2, 3}));
        QVERIFY(samePartition(clusterAgglomerative(x.data(), 6, 2, 6), {0, 1, 2, 3, 4, 5}));
        QVERIFY(samePartition(clusterAgglomerative(x.data(), 6, 2, 1), {0, 0, 0, 0, 0, 0}));
    }

    void averageLinkageHeights() {
        // 4 points on a line at 0, 1, 3, 7 (distance |a - b|): merges {0,1} at 1,
        // {0,1}+{3} at (3+2)/2 = 2.5, then {7} at (7+6+4)/3.
        std::vector<double> dist(16);
        const double p[4] = {0, 1, 3, 7};
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j)
                dist[i * 4 + j] = std::abs(p[i] - p[j]);
        auto copy = dist;
        QVERIFY(samePartition(averageLinkageCut(copy, 4, 2), {0, 0, 0, 1}));
        copy = dist;
        QVERIFY(samePartition(averageLinkageCut(copy, 4, 3), {0, 0, 1, 2}));
    }

    void matchesScikitLearn_data() {
        QTest::addColumn<QString>("base");
        QTest::addColumn<int>("k");
        const QDir dir(QMPP_FIXTURES);
        for (const QString& f : dir.entryList({"cluster_*_x.npy"})) {
            const QString base = dir.filePath(f.left(f.size() - 6));
            const int k = f.section('_', 3, 3).mid(1).toInt();
            QTest::newRow(qPrintable(f)) << base << k;
        }
        QVERIFY(dir.entryList({"cluster_*_x.npy"}).size() >= 4);
    }
    void matchesScikitLearn() {
        QFETCH(QString, base);
        QFETCH(int, k);
        const NdArray xa = readNpy((base + "_x.npy").toStdString());
        const auto x = xa.toFloat();
        const i64 n = xa.shape[0], d = xa.shape[1];
        auto labels = [&](const char* which) {
            const auto v = readNpy((base + "_" + which + ".npy").toStdString()).toDouble();
            return std::vector<i64>(v.begin(), v.end());
        };
        const auto ref = clusterReference(x.data(), n, d, k);
        QVERIFY2(samePartition(ref, labels("reference")),
                 "reference mode differs from scikit-learn");
        const auto agg = clusterAgglomerative(x.data(), n, d, k);
        QVERIFY2(samePartition(agg, labels("agglomerative")),
                 "agglomerative differs from scikit-learn's cosine average linkage");
        std::set<i64> ids(agg.begin(), agg.end());
        QCOMPARE(i64(ids.size()), i64(k));
    }

    void tomeMatchesItsReference_data() {
        QTest::addColumn<QString>("base");
        QTest::addColumn<int>("k");
        const QDir dir(QMPP_FIXTURES);
        for (const QString& f : dir.entryList({"tome_*_x.npy"}))
            QTest::newRow(qPrintable(f))
                << dir.filePath(f.left(f.size() - 6)) << f.section('_', 3, 3).mid(1).toInt();
        QVERIFY(dir.entryList({"tome_*_x.npy"}).size() >= 3);
    }
    void tomeMatchesItsReference() {
        QFETCH(QString, base);
        QFETCH(int, k);
        const NdArray xa = readNpy((base + "_x.npy").toStdString());
        const auto x = xa.toFloat();
        const i64 n = xa.shape[0], d = xa.shape[1];
        std::vector<float> merged;
        std::vector<i64> sizes, survivors;
        const auto labels = tomeMerge(x.data(), n, d, k, merged, sizes, survivors);
        const auto ref = readNpy((base + "_labels.npy").toStdString()).toDouble();
        QCOMPARE(labels, std::vector<i64>(ref.begin(), ref.end())); // same groups, same order
        const auto refMerged = readNpy((base + "_merged.npy").toStdString()).toFloat();
        QCOMPARE(merged.size(), refMerged.size());
        for (std::size_t i = 0; i < merged.size(); ++i)
            QVERIFY(std::abs(merged[i] - refMerged[i]) < 1e-5);
        QCOMPARE(i64(survivors.size()), i64(k));
        i64 total = 0;
        for (i64 s : sizes)
            total += s;
        QCOMPARE(total, n);
    }

    void pruningKeepsTokensUnchanged() {
        const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
        std::vector<float> merged;
        std::vector<i64> sizes;
        const auto labels = pruneKeep(x.data(), 4, 2, {1, 3}, merged, sizes);
        QCOMPARE(labels, (std::vector<i64>{-1, 0, -1, 1}));
        QCOMPARE(merged, (std::vector<float>{3, 4, 7, 8}));
        QCOMPARE(sizes, (std::vector<i64>{1, 1}));
    }

    void exactMethodsRefuseHugeN() {
        const i64 n = maxExactClusterN() + 1;
        std::vector<float> x(static_cast<std::size_t>(n), 1.0f);
        try {
            clusterAgglomerative(x.data(), n, 1, 2);
            QFAIL("accepted N beyond the limit");
        } catch (const UsageError& e) {
            QVERIFY(QString(e.what()).contains("seeded"));
        }
    }
};

QTEST_GUILESS_MAIN(TestCluster)
#include "tst_cluster.moc"
