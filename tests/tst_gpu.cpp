// GPU tests: every kernel against the float64 reference (qmpp check --quick) and the CUDA
// backend against the CPU backend. Without a usable CUDA device they skip and say why.
#include "qmpp/check.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/vitgpu.h"
#include "testutil.h"

#include <sstream>

using namespace qmpp;
using namespace qmpp::test;

class TestGpu : public QObject {
    Q_OBJECT
    std::string m_why;

  private slots:
    void initTestCase() {
        if (!gpuAvailable(&m_why))
            QSKIP(qPrintable("GPU tests skipped: " + QString::fromStdString(m_why)));
    }

    void kernelsMatchReference() {
        CheckOptions o;
        o.quick = true;
        o.photoTokens = std::string(QMPP_SAMPLES) + "/chelsea_tokens.npy";
        std::ostringstream log;
        const auto rows = runChecks(o, log);
        QVERIFY(rows.size() > 50);
        for (const auto& r : rows)
            QVERIFY2(r.pass, qPrintable(QString::fromStdString(r.kernel + " " + r.version + " " +
                                                               r.precision + " " + r.note)));
    }

    void backendsAgree() {
        const NdArray a = readNpy(std::string(QMPP_SAMPLES) + "/chelsea_tokens.npy");
        TokenSet t = tokenSet(a.toFloat(), a.shape[0], a.shape[1]);
        MergeParams p;
        p.backend = BackendKind::Cpu;
        const MergeResult cpu = runMerge(t, p);
        p.backend = BackendKind::CudaBasic;
        const MergeResult gpu = runMerge(t, p);
        QCOMPARE(gpu.backend, std::string("cuda-basic"));
        i64 same = 0;
        for (i64 i = 0; i < t.n; ++i)
            same += cpu.labels[i] == gpu.labels[i];
        QVERIFY(double(same) / t.n >= 0.995);
        QCOMPARE(gpu.foreground, cpu.foreground);
        for (i64 i = 0; i < t.n; ++i)
            QVERIFY(std::abs(cpu.saliency[i] - gpu.saliency[i]) < 1e-4);
        QVERIFY(std::abs(cpu.metrics.reconstructionError - gpu.metrics.reconstructionError) < 1e-4);
        p.precision = Precision::FP16;
        const MergeResult half = runMerge(t, p);
        QCOMPARE(half.precision, std::string("fp16"));
        QVERIFY(std::abs(cpu.metrics.reconstructionError - half.metrics.reconstructionError) <
                1e-2);
    }

    // The ViT's GPU forward: its kernels against float64, then GPU against CPU for every
    // method in FP32 (1e-4) and FP16, on the bundled model and the fixtures' images.
    void vitForwardMatchesCpu() {
        const auto model =
            loadVit(std::string(QMPP_SOURCE_DIR) + "/resources/models/vit-fmnist.safetensors");
        const NdArray px = readNpy(std::string(QMPP_FIXTURES) + "/model/fmnist16_pixels.npy");
        std::ostringstream log;
        const auto rows = checkVitGpu(model, px.toFloat().data(), px.shape[0], log);
        QVERIFY(rows.size() >= 30);
        for (const auto& r : rows)
            QVERIFY2(r.pass, qPrintable(QString::fromStdString(r.what + ": " + log.str())));
    }

    // The language model's GPU forward against the CPU's, unmerged and with each prefix method.
    void languageModelMatchesCpu() {
        const auto lm =
            loadLm(std::string(QMPP_SOURCE_DIR) + "/resources/models/kjv-lm.safetensors");
        std::vector<i64> ids;
        for (double v :
             readNpy(std::string(QMPP_FIXTURES) + "/model/kjv_psalm23_ids.npy").toDouble())
            ids.push_back(static_cast<i64>(v));
        std::ostringstream log;
        const auto rows = checkLmGpu(lm, ids, log);
        QCOMPARE(rows.size(), std::size_t(6));
        for (const auto& r : rows)
            QVERIFY2(r.pass, qPrintable(QString::fromStdString(r.what + ": " + log.str())));
    }
};

QTEST_GUILESS_MAIN(TestGpu)
#include "tst_gpu.moc"
