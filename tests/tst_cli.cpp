// The qmpp CLI end to end: outputs on the bundled photo, batches, and every error path with
// its exit code (2 usage, 3 bad input, 4 runtime), the output folder left as it was.
#include "qmpp/benchfile.h"
#include "qmpp/engine.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/plotting.h"
#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <cmath>
#include <map>
#include <set>

using namespace qmpp;
using namespace qmpp::test;

namespace {

using Result = CliResult;
Result qmppRun(const QStringList& args) {
    return runQmpp(args);
}

QString sample() {
    return QString(QMPP_SAMPLES) + "/chelsea.png";
}

QStringList listing(const QString& dir) {
    return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
}

} // namespace

class TestCli : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;
    QString m_tokens; // [40, 6] float32

    QString path(const QString& name) const { return m_dir.filePath(name); }
    void saveNpy(const QString& name, const NdArray& a) const {
        writeNpy(path(name).toStdString(), a);
    }

  private slots:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        m_tokens = path("tokens.npy");
        saveNpy("tokens.npy", NdArray::fromFloat(randomTokens(40, 6, 1), {40, 6}));
    }

    void helpAndVersion() {
        Result r = qmppRun({"--version"});
        QCOMPARE(r.code, 0);
        QVERIFY(r.out.contains("qmpp 0."));
        r = qmppRun({"--help"});
        QCOMPARE(r.code, 0);
        QVERIFY(r.out.contains("run") && r.out.contains("tokenize") && r.out.contains("bench"));
        r = qmppRun({"run", "--help"});
        QCOMPARE(r.code, 0);
        for (const char* opt :
             {"--tokens",        "--budget",    "--temperature", "--epsilon",    "--gamma",
              "--alpha",         "--layers",    "--refine",      "--seed",       "--uniform",
              "--hidden-states", "--attention", "--cluster",     "--ar-weights", "--patch",
              "--projection",    "--batch",     "--backend",     "--precision",  "--force",
              "--quiet"})
            QVERIFY2(r.out.contains(opt), opt);
    }

    void runOnBundledPhoto() {
        const QString out = path("photo");
        const Result r = qmppRun({"run", sample(), "--out", out, "--budget", "0.1", "--seed", "3"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains(out));
        for (const char* f :
             {"merged.npy", "labels.npy", "saliency.npy", "mask.npy", "mass.npy",
              "result.safetensors", "report.json", "saliency.png", "clusters.png", "merged.png"})
            QVERIFY2(QFile::exists(out + "/" + f), f);
        // overlays at the image's own resolution (451 x 300); saliency.png adds its colour bar
        QCOMPARE(QImage(out + "/clusters.png").size(), QSize(451, 300));
        QCOMPARE(QImage(out + "/merged.png").size(), QSize(451, 300));
        QCOMPARE(QImage(out + "/saliency.png").height(), 300);
        QVERIFY(QImage(out + "/saliency.png").width() > 451);
        // no temporary folders left beside it
        for (const QString& e : listing(m_dir.path()))
            QVERIFY2(!e.contains(".qmpp-"), qPrintable(e));

        const NdArray merged = readNpy((out + "/merged.npy").toStdString());
        const NdArray labels = readNpy((out + "/labels.npy").toStdString());
        const NdArray mass = readNpy((out + "/mass.npy").toStdString());
        const NdArray sal = readNpy((out + "/saliency.npy").toStdString());
        const NdArray pi = readNpy((out + "/mask.npy").toStdString());
        QCOMPARE(int(labels.dtype), int(DType::I64));
        QCOMPARE(int(merged.dtype), int(DType::F32));
        const i64 n = 19 * 28, d = 768, k = 53; // 451x300 -> 448x304, K = floor(0.1 N)
        QCOMPARE(merged.shape, (std::vector<i64>{k, d}));
        QCOMPARE(labels.shape, (std::vector<i64>{n}));
        for (float s : sal.toFloat())
            QVERIFY(s >= 0 && s <= 1);
        double piSum = 0;
        for (float p : pi.toFloat())
            piSum += p;
        QVERIFY(std::abs(piSum - 1) < 1e-4);
        // merged tokens = mass-weighted means of the tokens each label gathers
        const QString tok = path("photo-tokens.npy");
        QCOMPARE(qmppRun({"tokenize", sample(), "--out", tok}).code, 0);
        const auto x = readNpy(tok.toStdString()).toFloat();
        QCOMPARE(i64(x.size()), n * d);
        // the folder holds the tokens it merged: the same as `qmpp tokenize` gives
        const NdArray inTokens = readNpy((out + "/tokens.npy").toStdString());
        QCOMPARE(inTokens.shape, (std::vector<i64>{n, d}));
        QVERIFY(inTokens.toFloat() == x);
        const auto lab = labels.toDouble();
        const auto m = mass.toFloat();
        const auto mg = merged.toFloat();
        std::vector<double> acc(k * d, 0.0), ms(k, 0.0);
        for (i64 i = 0; i < n; ++i) {
            const i64 g = i64(lab[i]);
            QVERIFY(g >= 0 && g < k);
            ms[g] += m[i];
            for (i64 j = 0; j < d; ++j)
                acc[g * d + j] += double(m[i]) * x[i * d + j];
        }
        for (i64 g = 0; g < k; ++g)
            for (i64 j = 0; j < d; ++j)
                QVERIFY(std::abs(mg[g * d + j] - acc[g * d + j] / ms[g]) < 1e-4);
        // result.safetensors holds the same arrays plus group sizes
        const TensorFile st = readSafetensors((out + "/result.safetensors").toStdString());
        QCOMPARE(st.find("labels")->bytes, labels.bytes);
        QCOMPARE(st.find("group_sizes")->shape, (std::vector<i64>{k}));
        // report.json
        QFile f(out + "/report.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject rep = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(rep["parameters"].toObject()["k"].toInt(), int(k));
        QCOMPARE(rep["parameters"].toObject()["budget"].toDouble(), 0.1);
        QCOMPARE(rep["parameters"].toObject()["k_from"].toString(), QString("budget"));
        QCOMPARE(rep["parameters"].toObject()["seed"].toInt(), 3);
        { // K asked for: the budget recorded is the share K keeps
            const QString byK = path("photo-k");
            QCOMPARE(qmppRun({"run", sample(), "--out", byK, "--tokens", "133", "--quiet"}).code,
                     0);
            QFile fk(byK + "/report.json");
            QVERIFY(fk.open(QIODevice::ReadOnly));
            const QJsonObject pk =
                QJsonDocument::fromJson(fk.readAll()).object()["parameters"].toObject();
            QCOMPARE(pk["k_from"].toString(), QString("tokens"));
            QCOMPARE(pk["budget"].toDouble(), 133.0 / double(n));
        }
        for (const char* key : {"ar", "fidelity", "total"})
            QVERIFY(rep["losses"].toObject().contains(key));
        for (const char* key :
             {"reconstruction_error", "mean_cosine", "norm_mass_top_k", "norm_mass_retention",
              "fidelity_ok", "saliency_retention", "group_size_min", "group_size_median",
              "group_size_max", "group_size_histogram", "ar_error_forward", "ar_error_backward"})
            QVERIFY2(rep["metrics"].toObject().contains(key), key);
        QCOMPARE(rep["metrics"].toObject()["ar_error_forward"].toArray().size(), int(k - 1));
        for (const char* key :
             {"saliency", "gumbel", "cluster", "merge", "ar_loss", "metrics", "total"})
            QVERIFY2(rep["timings_ms"].toObject().contains(key), key);
        QCOMPARE(rep["backend"].toString(), QString("cpu"));
        QVERIFY(!rep["device"].toString().isEmpty());
        QVERIFY(rep["ar_heads"].toString().contains("default"));
        QCOMPARE(rep["input"].toObject()["grid"].toArray().size(), 2);

        // the same folder again: refused with exit 3, untouched; --force replaces
        const QByteArray before =
            QFile(out + "/labels.npy").open(QIODevice::ReadOnly) ? QByteArray() : QByteArray();
        Q_UNUSED(before);
        const Result again = qmppRun({"run", sample(), "--out", out, "--seed", "4"});
        QCOMPARE(again.code, 3);
        QVERIFY(again.err.contains("--force"));
        QCOMPARE(readNpy((out + "/labels.npy").toStdString()).bytes, labels.bytes);
        const Result forced =
            qmppRun({"run", sample(), "--out", out, "--seed", "4", "--force", "--quiet"});
        QCOMPARE(forced.code, 0);
        QVERIFY(forced.out.isEmpty());
        QVERIFY(readNpy((out + "/labels.npy").toStdString()).bytes != labels.bytes);
    }

    void runOnEmbeddingsAndBatches() {
        Result r = qmppRun(
            {"run", m_tokens, "--out", path("emb"), "--tokens", "8", "--cluster", "agglomerative"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(readNpy(path("emb/merged.npy").toStdString()).shape, (std::vector<i64>{8, 6}));
        QVERIFY(!QFile::exists(path("emb/saliency.png")));
        // [B, N, D]: every item, outputs gain a leading B axis; --batch picks one
        std::vector<float> b3 = randomTokens(3 * 20 * 4, 1, 9);
        saveNpy("batch.npy", NdArray::fromFloat(b3, {3, 20, 4}));
        r = qmppRun({"run", path("batch.npy"), "--out", path("b"), "--tokens", "5"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(readNpy(path("b/merged.npy").toStdString()).shape, (std::vector<i64>{3, 5, 4}));
        QCOMPARE(readNpy(path("b/labels.npy").toStdString()).shape, (std::vector<i64>{3, 20}));
        r = qmppRun(
            {"run", path("batch.npy"), "--out", path("b1"), "--tokens", "5", "--batch", "1"});
        QCOMPARE(r.code, 0);
        QCOMPARE(readNpy(path("b1/merged.npy").toStdString()).shape, (std::vector<i64>{5, 4}));
        // item 1 alone equals item 1 of the batch
        const auto all = readNpy(path("b/merged.npy").toStdString()).toFloat();
        const auto one = readNpy(path("b1/merged.npy").toStdString()).toFloat();
        QCOMPARE(std::vector<float>(all.begin() + 20, all.begin() + 40), one);
        // baselines through the same contract
        for (const char* m : {"tome", "topk", "random"}) {
            r = qmppRun({"run", m_tokens, "--out", path(QString("m-") + m), "--tokens", "9",
                         "--method", m});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            QCOMPARE(readNpy(path(QString("m-") + m + "/merged.npy").toStdString()).shape,
                     (std::vector<i64>{9, 6}));
            QFile f(path(QString("m-") + m + "/report.json"));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QJsonObject rep = QJsonDocument::fromJson(f.readAll()).object();
            QCOMPARE(rep["parameters"].toObject()["method"].toString(), QString(m));
            QCOMPARE(rep["method"].toString(), QString(m));
        }
        const auto pruned = readNpy(path("m-topk/labels.npy").toStdString()).toDouble();
        QCOMPARE(std::count(pruned.begin(), pruned.end(), -1.0), std::ptrdiff_t(40 - 9));
        // .safetensors input with hidden states and supplied uniforms
        TensorFile f;
        f.tensors = {{"tokens", NdArray::fromFloat(randomTokens(40, 6, 1), {40, 6})},
                     {"other", NdArray::fromFloat({1}, {1})}};
        writeSafetensors(path("in.safetensors").toStdString(), f);
        saveNpy("hidden.npy", NdArray::fromFloat(randomTokens(2 * 40 * 6, 1, 4), {2, 40, 6}));
        std::vector<float> u(40, 0.5f);
        saveNpy("u.npy", NdArray::fromFloat(u, {40}));
        r = qmppRun({"run", path("in.safetensors"), "--out", path("st"), "--hidden-states",
                     path("hidden.npy"), "--uniform", path("u.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(readNpy(path("st/merged.npy").toStdString()).shape, (std::vector<i64>{8, 6}));
    }

    // A .safetensors input's own hidden states and attention maps give the saliency, as the
    // studio opens the file (the same file, the same result); --tokens-only ignores them.
    void ownTensorsAsTheStudioChoosesThem() {
        struct Case {
            const char* name;
            std::vector<std::pair<std::string, std::vector<i64>>> tensors;
            QStringList extra;
            const char* source;
        };
        const Case cases[] = {
            {"attention",
             {{"tokens", {40, 6}}, {"attentions", {2, 3, 40, 40}}},
             {},
             "attention maps"},
            {"hidden", {{"tokens", {40, 6}}, {"hidden_states", {2, 40, 6}}}, {}, "hidden states"},
            {"both",
             {{"tokens", {40, 6}}, {"hidden_states", {2, 40, 6}}, {"attentions", {2, 40, 40}}},
             {},
             "attention maps"},
            {"tokens only",
             {{"tokens", {40, 6}}, {"attentions", {2, 40, 40}}},
             {"--tokens-only"},
             "tokens"},
            {"misfit", {{"tokens", {40, 6}}, {"attentions", {2, 39, 39}}}, {}, "tokens"},
            {"batch",
             {{"tokens", {2, 40, 6}}, {"attentions", {2, 40, 40}}},
             {"--batch", "0"},
             "tokens"}};
        for (const auto& c : cases) {
            TensorFile f;
            for (const auto& [key, shape] : c.tensors) {
                i64 count = 1;
                for (i64 d : shape)
                    count *= d;
                std::vector<float> v(static_cast<std::size_t>(count));
                for (std::size_t i = 0; i < v.size(); ++i)
                    v[i] = key == "tokens" ? std::sin(0.37f * float(i)) : 0.1f + float(i % 7);
                f.tensors.emplace_back(key, NdArray::fromFloat(v, shape));
            }
            const QString in = path(QString("own-%1.safetensors").arg(c.name)),
                          out = path(QString("own-%1").arg(c.name));
            writeSafetensors(in.toStdString(), f);
            const Result r = qmppRun(QStringList{"run", in, "--out", out} + c.extra);
            QVERIFY2(r.code == 0, qPrintable(QString(c.name) + ": " + r.err));
            QFile rep(out + "/report.json");
            QVERIFY(rep.open(QIODevice::ReadOnly));
            const QString source =
                QJsonDocument::fromJson(rep.readAll()).object()["saliency_source"].toString();
            QVERIFY2(source.startsWith(c.source), qPrintable(QString(c.name) + ": " + source));
            // the studio's choice of the same file is core's defaultTensors
            const TensorChoice choice = defaultTensors(listTensors(in.toStdString()));
            QCOMPARE(!choice.attention.empty() && !c.extra.contains("--tokens-only"),
                     QString(c.source) == "attention maps");
        }
    }

    void errorPaths_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("message");
        const QString out = m_dir.filePath("err-out");
        const QString tok = m_dir.filePath("tokens.npy");
        QTest::newRow("no args") << QStringList{} << 2 << "";
        QTest::newRow("unknown option")
            << QStringList{"run", tok, "--out", out, "--bogus"} << 2 << "bogus";
        QTest::newRow("missing --out") << QStringList{"run", tok} << 2 << "--out";
        QTest::newRow("tokens and budget")
            << QStringList{"run", tok, "--out", out, "--tokens", "3", "--budget", "0.5"} << 2
            << "excludes";
        QTest::newRow("K > N") << QStringList{"run", tok, "--out", out, "--tokens", "41"} << 2
                               << "exceeds";
        QTest::newRow("K = 0") << QStringList{"run", tok, "--out", out, "--tokens", "-1"} << 2
                               << "at least 1";
        QTest::newRow("budget > 1")
            << QStringList{"run", tok, "--out", out, "--budget", "1.5"} << 2 << "budget";
        QTest::newRow("budget 0") << QStringList{"run", tok, "--out", out, "--budget", "0"} << 2
                                  << "budget";
        QTest::newRow("tau 0") << QStringList{"run", tok, "--out", out, "--temperature", "0"} << 2
                               << "temperature";
        QTest::newRow("not a number")
            << QStringList{"run", tok, "--out", out, "--tokens", "abc"} << 2 << "abc";
        QTest::newRow("bad method")
            << QStringList{"run", tok, "--out", out, "--method", "pitome"} << 2 << "pitome";
        QTest::newRow("bad cluster")
            << QStringList{"run", tok, "--out", out, "--cluster", "kmeans"} << 2 << "kmeans";
        QTest::newRow("fp16 on cpu")
            << QStringList{"run", tok, "--out", out, "--backend", "cpu", "--precision", "fp16"} << 2
            << "fp16";
        QTest::newRow("batch of 2-D")
            << QStringList{"run", tok, "--out", out, "--batch", "1"} << 2 << "batch";
        QTest::newRow("missing input")
            << QStringList{"run", m_dir.filePath("nope.npy"), "--out", out} << 3
            << "nope.npy: no such file";
        QTest::newRow("directory input")
            << QStringList{"run", m_dir.filePath("photo"), "--out", out} << 3
            << "unknown input type";
        QTest::newRow("wrong extension")
            << QStringList{"run", m_dir.filePath("x.txt"), "--out", out} << 3
            << "unknown input type";
        QTest::newRow("truncated npy")
            << QStringList{"run", m_dir.filePath("trunc.npy"), "--out", out} << 3 << "truncated";
        QTest::newRow("nan tokens")
            << QStringList{"run", m_dir.filePath("nan.npy"), "--out", out} << 3 << "non-finite";
        QTest::newRow("1-d tokens")
            << QStringList{"run", m_dir.filePath("vec.npy"), "--out", out} << 3 << "[N, D]";
        QTest::newRow("int tokens") << QStringList{"run", m_dir.filePath("ints.npy"), "--out", out}
                                    << 3 << "floating point";
        QTest::newRow("not an image")
            << QStringList{"run", m_dir.filePath("junk.png"), "--out", out} << 3 << "junk.png";
        QTest::newRow("image over 100 megapixels")
            << QStringList{"run",
                           QString(QMPP_SOURCE_DIR) + "/tests/fuzz/corpus/image/huge-dims.jpg",
                           "--out", out}
            << 3 << "100 megapixels";
        QTest::newRow("video") << QStringList{"run", m_dir.filePath("clip.mp4"), "--out", out} << 3
                               << "not a readable video";
        const QString clip = QString(QMPP_SAMPLES) + "/realshort.mp4";
        QTest::newRow("empty video")
            << QStringList{"run", m_dir.filePath("empty.mp4"), "--out", out} << 3
            << "empty.mp4: the file is empty";
        QTest::newRow("truncated video")
            << QStringList{"run", m_dir.filePath("trunc.mp4"), "--out", out} << 3
            << "trunc.mp4: not a readable video";
        QTest::newRow("video, zero frames")
            << QStringList{"run", QString(QMPP_FIXTURES) + "/video_zero_frames.avi", "--out", out}
            << 3 << "no decodable frames";
        QTest::newRow("frames past the end")
            << QStringList{"run", clip, "--frames", "40:50", "--out", out} << 3 << "past the end";
        QTest::newRow("empty frame range")
            << QStringList{"run", clip, "--frames", "5:5", "--out", out} << 2 << "empty";
        QTest::newRow("malformed frames")
            << QStringList{"run", clip, "--frames", "a-b", "--out", out} << 2 << "A:B";
        QTest::newRow("window not a multiple of T")
            << QStringList{"run", clip, "--tubelet", "2", "--window", "3", "--out", out} << 2
            << "multiple";
        QTest::newRow("frames on tokens")
            << QStringList{"run", tok, "--frames", "0:2", "--out", out} << 2 << "video inputs";
        QTest::newRow("tokenize text file")
            << QStringList{"tokenize", m_dir.filePath("x.txt"), "--out", m_dir.filePath("t.npy")}
            << 3 << "tokenize takes";
        QTest::newRow("bench frames 2-D")
            << QStringList{"bench", "--frames", tok} << 3 << "[F, N, D]";
        QTest::newRow("out under a file")
            << QStringList{"run", tok, "--out", tok + "/sub"} << 3 << "tokens.npy";
        if (QDir("/proc/self").exists()) // not writable, even for root
            QTest::newRow("out not writable")
                << QStringList{"run", tok, "--out", "/proc/self/qmpp-out"} << 3 << "/proc/self";
        QTest::newRow("uniform length")
            << QStringList{"run", tok, "--out", out, "--uniform", m_dir.filePath("u5.npy")} << 3
            << "uniforms";
        QTest::newRow("hidden mismatch")
            << QStringList{"run", tok, "--out", out, "--hidden-states", m_dir.filePath("h-bad.npy")}
            << 3 << "hidden states";
        QTest::newRow("negative attention")
            << QStringList{"run", tok, "--out", out, "--attention", m_dir.filePath("att-neg.npy")}
            << 3 << "negative";
        QTest::newRow("ar weights missing")
            << QStringList{"run",          tok,
                           "--out",        out,
                           "--ar-weights", m_dir.filePath("ar.safetensors")}
            << 3 << "forward_ar";
        QTest::newRow("out is a file")
            << QStringList{"run", tok, "--out", tok} << 3 << "not a folder";
        QTest::newRow("bench bad repeats")
            << QStringList{"bench", "--repeats", "0"} << 2 << "repeats";
    }
    void errorPaths() {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, message);
        // fixtures for the rows above
        auto raw = [&](const QString& name, const QByteArray& bytes) {
            QFile f(path(name));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(bytes);
        };
        const auto good = encodeNpy(NdArray::fromFloat(randomTokens(10, 3, 2), {10, 3}));
        raw("trunc.npy",
            QByteArray(reinterpret_cast<const char*>(good.data()), int(good.size()) - 7));
        std::vector<float> nan = randomTokens(10, 3, 2);
        nan[13] = NAN;
        saveNpy("nan.npy", NdArray::fromFloat(nan, {10, 3}));
        saveNpy("vec.npy", NdArray::fromFloat({1, 2, 3}, {3}));
        saveNpy("ints.npy", NdArray::fromInt32({1, 2, 3, 4}, {2, 2}));
        raw("junk.png", "not a png at all");
        raw("x.txt", "hello");
        raw("clip.mp4", "not a video");
        raw("empty.mp4", "");
        {
            QFile clip(QString(QMPP_SAMPLES) + "/realshort.mp4");
            QVERIFY(clip.open(QIODevice::ReadOnly));
            raw("trunc.mp4", clip.read(30000)); // cut before the index (moov) box
        }
        saveNpy("u5.npy", NdArray::fromFloat({0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, {5}));
        saveNpy("h-bad.npy", NdArray::fromFloat(std::vector<float>(2 * 40 * 5, 1.0f), {2, 40, 5}));
        std::vector<float> att(40 * 40, 1.0f);
        att[77] = -0.5f;
        saveNpy("att-neg.npy", NdArray::fromFloat(att, {1, 40, 40}));
        TensorFile ar;
        ar.tensors = {{"unrelated", NdArray::fromFloat({1}, {1})}};
        writeSafetensors(path("ar.safetensors").toStdString(), ar);

        // an output folder that holds an unrelated file: left exactly as it was
        QDir().mkpath(path("err-out"));
        raw("err-out/keep.txt", "keep me");
        const QStringList before = listing(path("err-out"));
        const QStringList parentBefore = listing(m_dir.path());

        const Result r = qmppRun(args);
        QCOMPARE(r.code, code);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
        QVERIFY2(!r.err.contains("terminate") && !r.err.contains("Aborted"), qPrintable(r.err));
        QCOMPARE(listing(path("err-out")), before);
        QCOMPARE(listing(m_dir.path()), parentBefore); // no temporary folder left behind
    }

    void diskFullDuringExport() {
        // A file-size limit makes every write past 64 KiB fail (EFBIG), as a full disk does
        // (ENOSPC): exit 3 naming the file, the folder as it was, no temporary folder left.
        QDir().mkpath(path("full-out"));
        QFile keep(path("full-out/keep.txt"));
        QVERIFY(keep.open(QIODevice::WriteOnly));
        keep.write("keep");
        keep.close();
        const QStringList parentBefore = listing(m_dir.path());
        QProcess p;
        p.start("bash", {"-c", "ulimit -f 64; exec \"$0\" \"$@\"", QMPP_CLI, "run", sample(),
                         "--out", path("full-out"), "--force"});
        QVERIFY(p.waitForFinished(120000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 3);
        QVERIFY2(err.contains("File too large") && err.contains("full-out"), qPrintable(err));
        QCOMPARE(listing(path("full-out")), QStringList{"keep.txt"});
        QCOMPARE(listing(m_dir.path()), parentBefore);
    }

    void videoRunAndTokenize() {
        const QString clip = QString(QMPP_SAMPLES) + "/realshort.mp4";
        const Result r = qmppRun({"run", clip, "--frames", "3:9", "--tubelet", "2", "--window", "4",
                                  "--out", path("video"), "--budget", "0.1"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains("flicker"));
        // units 3:7 and 7:9 (padded to 4 frames); tokens = 2 slots x 15 x 20 tubelets of 2 frames
        const NdArray merged = readNpy(path("video/merged.npy").toStdString());
        QCOMPARE(merged.shape, (std::vector<i64>{2, 60, 3 * 2 * 16 * 16}));
        QCOMPARE(readNpy(path("video/labels.npy").toStdString()).shape, (std::vector<i64>{2, 600}));
        QFile f(path("video/report.json"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject rep = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(rep["input"].toObject()["kind"].toString(), QString("video"));
        QCOMPARE(rep["input"].toObject()["frames"].toString(), QString("3:9"));
        const QJsonArray units = rep["units"].toArray();
        QCOMPARE(units.size(), 2);
        QCOMPARE(units[1].toObject()["frames"].toArray()[0].toInt(), 7);
        QCOMPARE(units[1].toObject()["frames"].toArray()[1].toInt(), 9);
        QCOMPARE(rep["summary"].toObject()["frames"].toInt(), 6);
        QVERIFY(QFileInfo(path("video/overlay.avi")).size() > 1000);

        // tokenize: [U, N, D] in float16, and the same tokens merge to the same labels
        const Result t = qmppRun({"tokenize", clip, "--frames", "3:9", "--tubelet", "2", "--window",
                                  "4", "--out", path("frames.npy"), "--dtype", "float16"});
        QVERIFY2(t.code == 0, qPrintable(t.err));
        const NdArray frames = readNpy(path("frames.npy").toStdString());
        QCOMPARE(frames.dtype, DType::F16);
        QCOMPARE(frames.shape, (std::vector<i64>{2, 600, 1536}));
        const Result b = qmppRun({"bench", "--frames", path("frames.npy"), "--repeats", "1",
                                  "--layers", "1", "--json", path("frames-bench.json")});
        QVERIFY2(b.code == 0, qPrintable(b.err));
        QVERIFY(b.out.contains("frame_pipeline"));
    }

    void sweepWritesTableAndPlot() {
        const QString out = path("sweep");
        const Result r = qmppRun({"sweep", m_tokens, "--methods", "quickmerge,tome,topk",
                                  "--budgets", "0.1,0.5,1", "--out", out, "--backend", "cpu"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile jf(out + "/sweep.json");
        QVERIFY(jf.open(QIODevice::ReadOnly));
        const QJsonArray rows = QJsonDocument::fromJson(jf.readAll()).object()["rows"].toArray();
        QCOMPARE(rows.size(), 9);
        QFile cf(out + "/sweep.csv");
        QVERIFY(cf.open(QIODevice::ReadOnly | QIODevice::Text));
        const QStringList lines = QString::fromUtf8(cf.readAll()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 10);
        QVERIFY(lines[0].startsWith("method,budget,k,reconstruction_error,mean_cosine"));
        for (int i = 0; i < rows.size(); ++i) {
            const QJsonObject o = rows[i].toObject();
            const QStringList f = lines[i + 1].split(',');
            QCOMPARE(f[0], o["method"].toString());
            QCOMPARE(f[2].toLongLong(), o["k"].toInteger());
            QVERIFY(std::abs(f[3].toDouble() - o["reconstruction_error"].toDouble()) < 1e-7);
            // K = floor(budget * 40); the identity merge at budget 1 reconstructs exactly
            QCOMPARE(o["k"].toInteger(), qint64(std::floor(o["budget"].toDouble() * 40 + 1e-9)));
            if (o["budget"].toDouble() == 1.0) QVERIFY(o["reconstruction_error"].toDouble() < 1e-6);
        }
        // the same point as `qmpp run` with that method and budget
        const Result one = qmppRun({"run", m_tokens, "--method", "tome", "--budget", "0.5", "--out",
                                    path("sweep-one"), "--backend", "cpu"});
        QVERIFY2(one.code == 0, qPrintable(one.err));
        QFile rf(path("sweep-one/report.json"));
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const double recErr = QJsonDocument::fromJson(rf.readAll())
                                  .object()["metrics"]
                                  .toObject()["reconstruction_error"]
                                  .toDouble();
        QCOMPARE(rows[4].toObject()["method"].toString(), QString("tome"));
        QVERIFY(std::abs(rows[4].toObject()["reconstruction_error"].toDouble() - recErr) < 1e-9);
        if (haveImageSupport()) {
            const QImage plot(out + "/sweep.png");
            QVERIFY(!plot.isNull() && plot.width() > 600);
            // every method drew a curve in its own colour (the project's palette)
            std::set<QString> methods;
            for (const auto& row : rows)
                methods.insert(row.toObject()["method"].toString());
            QVERIFY(methods.size() >= 3);
            for (const QString& m : methods) {
                const QRgb want = qmpp::methodRgb(m.toStdString()) | 0xff000000u;
                int count = 0;
                for (int y = 0; y < plot.height(); ++y)
                    for (int x = 0; x < plot.width(); ++x)
                        count += plot.pixel(x, y) == want;
                QVERIFY2(count > 50, qPrintable(m));
            }
        }
        const Result again = qmppRun({"sweep", m_tokens, "--out", out});
        QCOMPARE(again.code, 3); // holds results
        QCOMPARE(
            qmppRun({"sweep", m_tokens, "--budgets", "0,0.5", "--out", path("sweep-bad")}).code, 2);
    }

    void benchCsvAndTrace() {
        const Result r = qmppRun({"bench", "--backend", "cpu", "--tokens-list", "64", "--dim", "16",
                                  "--layers", "1", "--repeats", "3", "--json", path("b.json"),
                                  "--csv", path("b.csv"), "--trace", path("b.trace.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile jf(path("b.json")), cf(path("b.csv")), tf(path("b.trace.json"));
        QVERIFY(jf.open(QIODevice::ReadOnly) && cf.open(QIODevice::ReadOnly | QIODevice::Text) &&
                tf.open(QIODevice::ReadOnly));
        const QJsonArray rows = QJsonDocument::fromJson(jf.readAll()).object()["results"].toArray();
        const QStringList lines = QString::fromUtf8(cf.readAll()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), rows.size() + 1);
        QCOMPARE(lines[0], QString("kernel,version,precision,N,D,L,K,repeats,median,min,max,p10,"
                                   "p90,stddev,tflops,gbps,verified"));
        // Chrome trace: one complete event per row, its duration the median in microseconds, back
        // to back
        const QJsonArray events =
            QJsonDocument::fromJson(tf.readAll()).object()["traceEvents"].toArray();
        QJsonArray complete;
        for (const auto& e : events)
            if (e.toObject()["ph"].toString() == "X") complete.append(e);
        QCOMPARE(complete.size(), rows.size());
        std::map<int, double> ts; // per track (version x precision)
        for (int i = 0; i < rows.size(); ++i) {
            const QJsonObject e = complete[i].toObject(), row = rows[i].toObject();
            QVERIFY(std::abs(e["dur"].toDouble() - 1000 * row["median"].toDouble()) < 1e-6);
            QVERIFY(std::abs(e["ts"].toDouble() - ts[e["tid"].toInt()]) < 1e-6);
            ts[e["tid"].toInt()] += e["dur"].toDouble();
            QCOMPARE(e["args"].toObject()["kernel"].toString(), row["kernel"].toString());
            QVERIFY(e["name"].toString().startsWith(row["kernel"].toString()));
            QCOMPARE(lines[i + 1].split(',')[0], row["kernel"].toString());
            QVERIFY(std::abs(lines[i + 1].split(',')[8].toDouble() - row["median"].toDouble()) <
                    1e-9);
        }
    }

    void checkAndGpuBackends() {
        // `qmpp check` verifies the CPU steps (and every kernel, given a GPU) and says so
        const Result c = qmppRun({"check", "--quick"});
        QVERIFY2(c.code == 0, qPrintable(c.out + c.err));
        QVERIFY(c.out.contains(" passed, 0 failed"));
        if (!gpuAvailable()) {
            QVERIFY(c.out.contains("no GPU"));
            // an explicit GPU backend without a device is a runtime failure (exit 4), auto says why
            const Result r =
                qmppRun({"run", m_tokens, "--out", path("gpu"), "--backend", "cuda-basic"});
            QCOMPARE(r.code, 4);
            QVERIFY2(r.err.contains("no GPU found") || r.err.contains("no CUDA support"),
                     qPrintable(r.err));
            QVERIFY(!QFile::exists(path("gpu")));
            const Result a = qmppRun({"run", m_tokens, "--out", path("auto")});
            QCOMPARE(a.code, 0);
            QVERIFY(a.err.contains("using the CPU backend"));
            const Result h =
                qmppRun({"run", m_tokens, "--out", path("half"), "--precision", "fp16"});
            QCOMPARE(h.code, 2);
            const Result b = qmppRun({"bench", "--backend", "cuda"});
            QCOMPARE(b.code, 4);
        }
    }

    // --baseline: a rerun of the same build is within noise (one retry, for a load spike on a
    // shared machine); against a baseline made 3x faster (a slowdown no load spike hides) it
    // exits 5 with SLOWER rows; a bad baseline stops before any work. The 20 % rule itself is
    // checked on fixed numbers in compareBenchRule.
    void benchBaselineGate() {
        const QStringList bench{"bench", "--backend", "cpu", "--tokens-list", "384", "--dim",
                                "256",   "--layers",  "1",   "--repeats",     "25"};
        const Result a = qmppRun(bench + QStringList{"--json", path("base.json")});
        QVERIFY2(a.code == 0, qPrintable(a.err));
        Result again = qmppRun(bench + QStringList{"--baseline", path("base.json")});
        if (again.code == 5) again = qmppRun(bench + QStringList{"--baseline", path("base.json")});
        QVERIFY2(again.code == 0, qPrintable(again.out + again.err));
        QVERIFY(again.out.contains("0 slower"));
        QVERIFY(again.out.contains("pipeline cpu fp32 N=384 D=256"));

        QFile f(path("base.json"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QJsonObject doc = QJsonDocument::fromJson(f.readAll()).object();
        QJsonArray rows = doc["results"].toArray();
        for (int i = 0; i < rows.size(); ++i) {
            QJsonObject o = rows[i].toObject();
            for (const char* key : {"median", "min", "max", "p10", "p90"})
                o[key] = o[key].toDouble() / 3; // the old build was 3x faster
            rows[i] = o;
        }
        doc["results"] = rows;
        QFile g(path("faster.json"));
        QVERIFY(g.open(QIODevice::WriteOnly));
        g.write(QJsonDocument(doc).toJson());
        g.close();
        const Result slow = qmppRun(bench + QStringList{"--baseline", path("faster.json")});
        QVERIFY2(slow.code == 5, qPrintable(slow.out + slow.err));
        QVERIFY(slow.out.contains("SLOWER"));
        QVERIFY(!slow.out.contains("0 slower"));

        QFile bad(path("bad-base.json"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("{\"results\": []}");
        bad.close();
        const Result b = qmppRun(bench + QStringList{"--baseline", path("bad-base.json")});
        QCOMPARE(b.code, 3);
        QVERIFY(b.err.contains("bad-base.json: not a `qmpp bench --json` file"));
        QVERIFY(!b.out.contains("pipeline")); // refused before any work
        const Result t =
            qmppRun(bench + QStringList{"--baseline", path("base.json"), "--threshold", "-1"});
        QCOMPARE(t.code, 2);
    }

    // The gate's rule on fixed numbers: 20 % slower with p10..p90 apart is SLOWER; 20 % slower
    // with the ranges overlapping is noise; 4 % slower with the ranges apart stays under the 5 %
    // threshold; 20 % faster apart is faster; new and gone cases are listed.
    void compareBenchRule() {
        auto row = [](const char* kernel, double median, double spread) {
            qmpp::TimingStats t;
            t.kernel = kernel;
            t.version = "cpu";
            t.precision = "fp32";
            t.n = 196;
            t.d = 768;
            t.l = 1;
            t.repeats = 20;
            t.median = median;
            t.p10 = median * (1 - spread);
            t.p90 = median * (1 + spread);
            t.min = t.p10;
            t.max = t.p90;
            return t;
        };
        qmpp::BenchFile old;
        for (const auto& t :
             {row("slower", 1.0, 0.03), row("noisy", 1.0, 0.15), row("small", 1.0, 0.01),
              row("faster", 1.0, 0.03), row("gone", 1.0, 0.03)})
            old.rows.push_back({t, -1});
        const std::vector<qmpp::TimingStats> now = {
            row("slower", 1.2, 0.03), row("noisy", 1.2, 0.15), row("small", 1.04, 0.01),
            row("faster", 0.8, 0.03), row("new", 1, 0)};
        const auto changes = qmpp::compareBench(old, now, 0.05);
        std::map<std::string, qmpp::BenchChange::Verdict> v;
        for (const auto& c : changes)
            v[c.verdict == qmpp::BenchChange::Verdict::Gone ? c.before.kernel : c.after.kernel] =
                c.verdict;
        using V = qmpp::BenchChange::Verdict;
        QCOMPARE(int(v["slower"]), int(V::Slower));
        QCOMPARE(int(v["noisy"]), int(V::Same));
        QCOMPARE(int(v["small"]), int(V::Same));
        QCOMPARE(int(v["faster"]), int(V::Faster));
        QCOMPARE(int(v["new"]), int(V::New));
        QCOMPARE(int(v["gone"]), int(V::Gone));
        QVERIFY(qmpp::anySlower(changes));
        QCOMPARE(changes.front().after.kernel, std::string("slower")); // sorted by ratio
        const std::string table = qmpp::benchChangeTable(changes, 0.05);
        QVERIFY(table.find("1 slower and 1 faster beyond noise") != std::string::npos);
        QVERIFY(!qmpp::anySlower(qmpp::compareBench(old, {row("noisy", 1.2, 0.15)}, 0.05)));
    }

    void benchWritesSchema() {
        const Result r =
            qmppRun({"bench", "--backend", "cpu", "--tokens-list", "64,100", "--dim", "32",
                     "--layers", "1,3", "--repeats", "3", "--json", path("bench.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile f(path("bench.json"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonArray rows = QJsonDocument::fromJson(f.readAll()).object()["results"].toArray();
        QCOMPARE(rows.size(), 2 * 2 * 7); // (N, L) pairs x (6 stages + pipeline)
        for (const auto& v : rows) {
            const QJsonObject o = v.toObject();
            for (const char* key :
                 {"kernel", "version", "precision", "N", "D", "L", "K", "repeats", "median", "min",
                  "max", "p10", "p90", "stddev", "tflops", "gbps", "verified"})
                QVERIFY2(o.contains(key), key);
            QVERIFY(o["min"].toDouble() <= o["median"].toDouble());
            QVERIFY(o["median"].toDouble() <= o["max"].toDouble());
            QVERIFY(o["verified"].toBool());
            QCOMPARE(o["repeats"].toInt(), 3);
        }
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
