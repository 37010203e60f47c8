// The whole pipeline through the engine's front door: invariants, edge cases, sources,
// determinism, and the image tokenizer.
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"
#include "testutil.h"

#include <QImage>
#include <cmath>
#include <numeric>
#ifdef _OPENMP
#include <omp.h>
#endif

using namespace qmpp;
using namespace qmpp::test;

namespace {

void checkInvariants(const TokenSet& t, const MergeResult& r) {
    QCOMPARE(i64(r.labels.size()), t.n);
    QCOMPARE(i64(r.merged.size()), r.k * t.d);
    double piSum = 0;
    for (float p : r.pi) {
        QVERIFY(p >= 0 && p <= 1);
        piSum += p;
    }
    QVERIFY(std::abs(piSum - 1) < 1e-5);
    for (float s : r.saliency)
        QVERIFY(s >= 0 && s <= 1);
    // labels index the merged sequence, groups in order of their first token
    i64 next = 0;
    for (i64 l : r.labels) {
        QVERIFY(l >= 0 && l <= next && l < r.k);
        if (l == next) ++next;
    }
    QCOMPARE(next, r.k);
    // merged = mass-weighted mean of each group, recomputed here in double
    std::vector<double> acc(r.k * t.d, 0.0), ms(r.k, 0.0);
    for (i64 i = 0; i < t.n; ++i) {
        ms[r.labels[i]] += r.mass[i];
        for (i64 j = 0; j < t.d; ++j)
            acc[r.labels[i] * t.d + j] += double(r.mass[i]) * t.x[i * t.d + j];
    }
    for (i64 g = 0; g < r.k; ++g)
        for (i64 j = 0; j < t.d; ++j) {
            const double ref = acc[g * t.d + j] / ms[g];
            QVERIFY(std::abs(r.merged[g * t.d + j] - ref) <= 1e-5 + 1e-5 * std::abs(ref));
        }
    QCOMPARE(i64(r.foreground.size()), r.k);
    QVERIFY(std::is_sorted(r.foreground.begin(), r.foreground.end()));
    QCOMPARE(r.timings.back().stage, std::string("total"));
}

} // namespace

class TestPipeline : public QObject {
    Q_OBJECT
  private slots:
    void invariants_data() {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("k");
        QTest::addColumn<int>("cluster");
        QTest::addColumn<int>("layers");
        QTest::newRow("seeded") << 200 << 48 << 40 << int(ClusterMethod::Seeded) << 1;
        QTest::newRow("seeded-L12") << 97 << 33 << 19 << int(ClusterMethod::Seeded) << 12;
        QTest::newRow("agglomerative") << 120 << 16 << 24 << int(ClusterMethod::Agglomerative) << 1;
        QTest::newRow("reference") << 60 << 8 << 9 << int(ClusterMethod::Reference) << 2;
        QTest::newRow("N=1") << 1 << 5 << 1 << int(ClusterMethod::Seeded) << 1;
        QTest::newRow("K=1") << 50 << 7 << 1 << int(ClusterMethod::Seeded) << 1;
    }
    void invariants() {
        QFETCH(int, n);
        QFETCH(int, d);
        QFETCH(int, k);
        QFETCH(int, cluster);
        QFETCH(int, layers);
        const TokenSet t = tokenSet(randomTokens(n, d, n + d), n, d);
        MergeParams p;
        p.k = k;
        p.cluster = ClusterMethod(cluster);
        p.layers = layers;
        const MergeResult r = runMerge(t, p);
        QCOMPARE(r.k, i64(k));
        QCOMPARE(r.layers, i64(layers));
        QCOMPARE(i64(r.layerEntropy.size()), i64(layers) * n);
        checkInvariants(t, r);
        QCOMPARE(r.backend, std::string("cpu"));
        QVERIFY(!r.notes.empty()); // auto says why it chose the CPU
    }

    void baselinesShareTheResultType() {
        const TokenSet t = tokenSet(randomTokens(90, 12, 21), 90, 12);
        MergeParams p;
        p.k = 20;
        for (Method m : {Method::ToMe, Method::TopK, Method::Random}) {
            p.method = m;
            const MergeResult r = runMerge(t, p);
            QCOMPARE(r.method, std::string(toString(m)));
            QCOMPARE(r.k, i64(20));
            QCOMPARE(i64(r.merged.size()), 20 * t.d);
            QCOMPARE(i64(r.foreground.size()), i64(20));
            QCOMPARE(i64(r.metrics.arErrorForward.size()), i64(19));
            QVERIFY(r.metrics.reconstructionError > 0 && r.metrics.reconstructionError < 1.5);
            i64 dropped = 0;
            for (i64 l : r.labels)
                dropped += l < 0;
            if (m == Method::ToMe) {
                QCOMPARE(dropped, i64(0));
                i64 total = 0;
                for (i64 sz : r.groupSizes)
                    total += sz;
                QCOMPARE(total, t.n);
            } else {
                QCOMPARE(dropped, t.n - 20); // pruning drops the rest
                for (i64 g = 0; g < 20; ++g) // kept tokens unchanged, in order
                    for (i64 j = 0; j < t.d; ++j)
                        QCOMPARE(r.merged[g * t.d + j], t.x[r.foreground[g] * t.d + j]);
            }
        }
        // top-K keeps exactly the K most salient tokens
        p.method = Method::TopK;
        const MergeResult top = runMerge(t, p);
        float kept = 1e9f, droppedMax = -1;
        for (i64 i = 0; i < t.n; ++i)
            (top.labels[i] >= 0 ? kept = std::min(kept, top.saliency[i])
                                : droppedMax = std::max(droppedMax, top.saliency[i]));
        QVERIFY(kept >= droppedMax);
        QVERIFY(top.metrics.saliencyRetention > 20.0 / 90.0);
    }

    void identityWhenKEqualsN() {
        const TokenSet t = tokenSet(randomTokens(30, 6, 3), 30, 6);
        MergeParams p;
        p.k = 30;
        const MergeResult r = runMerge(t, p);
        for (i64 i = 0; i < 30; ++i)
            QCOMPARE(r.labels[i], i);
        for (i64 i = 0; i < 30 * 6; ++i)
            QVERIFY(std::abs(r.merged[i] - t.x[i]) < 1e-6);
        QVERIFY(r.metrics.reconstructionError < 1e-6);
        QVERIFY(std::abs(r.metrics.meanCosine - 1) < 1e-6);
        QVERIFY(std::abs(r.metrics.normMassRetention - 1) < 1e-6);
        QVERIFY(r.metrics.fidelityOk);
        QCOMPARE(r.metrics.groupSizeMax, i64(1));
        QCOMPARE(r.metrics.groupSizeHistogram, std::vector<i64>{30});
        QCOMPARE(r.metrics.saliencyRetention, 1.0);
    }

    void metricsByDefinition() {
        const TokenSet t = tokenSet(randomTokens(80, 10, 11), 80, 10);
        MergeParams p;
        p.budget = 0.25;
        const MergeResult r = runMerge(t, p);
        double e2 = 0, x2 = 0, cs = 0, nx = 0, kept = 0;
        for (i64 i = 0; i < t.n; ++i) {
            const float* u = &r.merged[r.labels[i] * t.d];
            for (i64 j = 0; j < t.d; ++j) {
                e2 += std::pow(t.x[i * t.d + j] - u[j], 2);
                x2 += std::pow(t.x[i * t.d + j], 2);
            }
            cs += cosine(&t.x[i * t.d], u, t.d);
            nx += std::sqrt(
                std::inner_product(&t.x[i * t.d], &t.x[(i + 1) * t.d], &t.x[i * t.d], 0.0));
        }
        for (i64 g = 0; g < r.k; ++g)
            kept += r.groupSizes[g] *
                    std::sqrt(std::inner_product(&r.merged[g * t.d], &r.merged[(g + 1) * t.d],
                                                 &r.merged[g * t.d], 0.0));
        QVERIFY(std::abs(r.metrics.reconstructionError - std::sqrt(e2 / x2)) < 1e-9);
        QVERIFY(std::abs(r.metrics.meanCosine - cs / t.n) < 1e-9);
        QVERIFY(std::abs(r.metrics.normMassRetention - kept / nx) < 1e-6);
        QCOMPARE(r.metrics.fidelityOk, r.metrics.normMassRetention >= p.gamma);
        QCOMPARE(i64(r.metrics.arErrorForward.size()), r.k - 1);
        QVERIFY(std::abs(r.losses.total - (p.alpha * r.losses.ar + r.losses.fidelity)) < 1e-12);
        i64 hist = 0;
        for (i64 c : r.metrics.groupSizeHistogram)
            hist += c;
        QCOMPARE(hist, r.k);
    }

    void suppliedUniformsReproduce() {
        const TokenSet t = tokenSet(randomTokens(64, 12, 5), 64, 12);
        MergeParams p;
        p.seed = 42;
        const MergeResult a = runMerge(t, p);
        p.uniforms = philoxUniforms(64, 42);
        const MergeResult b = runMerge(t, p);
        QCOMPARE(a.labels, b.labels);
        QCOMPARE(a.merged, b.merged);
        p.uniforms.clear();
        p.seed = 43;
        const MergeResult c = runMerge(t, p);
        QVERIFY(c.pi != a.pi);
    }

    void saliencySources() {
        const i64 n = 24, d = 6;
        TokenSet t = tokenSet(randomTokens(n, d, 9), n, d);
        MergeParams p;
        // hidden states equal to the tokens, L = 1: the same as tokens-only with L = 1
        const MergeResult base = runMerge(t, p);
        t.hidden = t.x;
        t.hiddenLayers = 1;
        const MergeResult hid = runMerge(t, p);
        QCOMPARE(hid.saliency, base.saliency);
        QVERIFY(QString::fromStdString(hid.saliencySource).startsWith("hidden"));
        // attention maps win over hidden states
        t.attnLayers = 1;
        t.attnHeads = 1;
        t.attention.assign(n * n, 1.0f);
        for (i64 i = 0; i < n; ++i)
            t.attention[i * n + i] = float(1 + i); // rows grow more focused
        const MergeResult att = runMerge(t, p);
        QVERIFY(QString::fromStdString(att.saliencySource).startsWith("attention"));
        QCOMPARE(att.saliency[0], 0.0f);     // highest entropy
        QCOMPARE(att.saliency[n - 1], 1.0f); // lowest entropy
    }

    void independentOfThreadCount() {
#ifdef _OPENMP
        const TokenSet t = tokenSet(randomTokens(300, 40, 2), 300, 40);
        MergeParams p;
        p.layers = 3;
        const int before = omp_get_max_threads();
        omp_set_num_threads(1);
        const MergeResult one = runMerge(t, p);
        omp_set_num_threads(3);
        const MergeResult three = runMerge(t, p);
        omp_set_num_threads(before);
        QCOMPARE(one.saliency, three.saliency);
        QCOMPARE(one.labels, three.labels);
        QCOMPARE(one.merged, three.merged);
        QCOMPARE(one.losses.ar, three.losses.ar);
#else
        QSKIP("built without OpenMP: single-threaded");
#endif
    }

    void imageTokenizer() {
        if (!haveImageSupport()) QSKIP("built without OpenCV");
        QTemporaryDir dir;
        // 32 x 48 pixels: exact multiples of P = 16, so no resize; 2 x 3 tokens.
        QImage img(48, 32, QImage::Format_RGB888);
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 48; ++x)
                img.setPixelColor(x, y, QColor((x * 5) % 256, (y * 7) % 256, (x + y) % 256));
        const QString path = dir.filePath("grid.png");
        QVERIFY(img.save(path));
        ImageInput info;
        const TokenSet t = tokenizeImage(path.toStdString(), 16, nullptr, &info);
        QCOMPARE(t.n, i64(6));
        QCOMPARE(t.d, i64(768));
        QCOMPARE(t.gridRows, 2);
        QCOMPARE(t.gridCols, 3);
        const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
        // token 4 = row 1, col 1; element (c, y, x) at c*256 + y*16 + x
        for (int c = 0; c < 3; ++c)
            for (int y : {0, 7, 15})
                for (int x : {0, 9, 15}) {
                    const QColor px = img.pixelColor(16 + x, 16 + y);
                    const int v = c == 0 ? px.red() : c == 1 ? px.green() : px.blue();
                    const float want = (v / 255.0f - mean[c]) / stdv[c];
                    QVERIFY(std::abs(t.x[4 * 768 + c * 256 + y * 16 + x] - want) < 1e-5);
                }
        // a ViT patch embedding [D', 3, P, P] with bias, from .safetensors
        const i64 dOut = 4;
        std::vector<float> w(dOut * 768), b = {0.5f, -1, 2, 0};
        for (std::size_t i = 0; i < w.size(); ++i)
            w[i] = std::sin(float(i));
        TensorFile f;
        f.tensors = {{"patch_embed.proj.weight", NdArray::fromFloat(w, {dOut, 3, 16, 16})},
                     {"patch_embed.proj.bias", NdArray::fromFloat(b, {dOut})}};
        const std::string wp = dir.filePath("proj.safetensors").toStdString();
        writeSafetensors(wp, f);
        const Projection proj = loadProjection(wp, 16);
        const TokenSet tp = tokenizeImage(path.toStdString(), 16, &proj, nullptr);
        QCOMPARE(tp.d, dOut);
        for (i64 i = 0; i < tp.n; ++i)
            for (i64 o = 0; o < dOut; ++o) {
                double s = b[o];
                for (i64 j = 0; j < 768; ++j)
                    s += double(w[o * 768 + j]) * t.x[i * 768 + j];
                QVERIFY(std::abs(tp.x[i * dOut + o] - s) < 1e-3);
            }
        QVERIFY_THROWS_EXCEPTION(InputError, loadProjection(wp, 14)); // wrong patch size
        // a resized, non-multiple image: sides snap to the nearest multiple of P
        QImage odd(50, 23, QImage::Format_RGB888);
        odd.fill(Qt::red);
        QVERIFY(odd.save(dir.filePath("odd.png")));
        const TokenSet to =
            tokenizeImage(dir.filePath("odd.png").toStdString(), 16, nullptr, &info);
        QCOMPARE(info.width, 48);
        QCOMPARE(info.height, 16);
        QCOMPARE(to.n, i64(3));
        // bytes that are not an image
        QFile junk(dir.filePath("junk.png"));
        QVERIFY(junk.open(QIODevice::WriteOnly));
        junk.write("definitely not a png");
        junk.close();
        QVERIFY_THROWS_EXCEPTION(
            InputError, tokenizeImage(junk.fileName().toStdString(), 16, nullptr, nullptr));
    }
};

QTEST_GUILESS_MAIN(TestPipeline)
#include "tst_pipeline.moc"
