// The studio's Model page: the bundled ViT's prediction against `qmpp eval` on the same image,
// supersede under rapid parameter changes, the labelled-set sweep with cancel, the overlays'
// drawing against cases computed by hand, and the clicked token's attention. Offscreen.
#include "mainwindow.h"
#include "modelpage.h"
#include "modelsweep.h"
#include "modelview.h"

#include "qmpp/io.h"
#include "testutil.h"

#include <QComboBox>
#include <QDockWidget>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <cmath>
#include <qcustomplot.h>

using namespace studio;

namespace {

const QString kModel = QStringLiteral(QMPP_SOURCE_DIR "/resources/models/vit-fmnist.safetensors");

JobEnd waitJob(JobOwner* jobs, quint64 id, int ms = 120000) {
    JobEnd end = JobEnd::Failed;
    bool over = false;
    QObject guard;
    QObject::connect(jobs, &JobOwner::finished, &guard,
                     [&](quint64 which, const QString&, JobEnd e, const QString&) {
                         if (which == id) end = e, over = true;
                     });
    QTRY_LOOP_IMPL(over, ms, 10);
    return over ? end : JobEnd::Failed;
}

// Waits until the page shows a result of `hp`'s method and schedule with no run pending.
bool waitShown(MainWindow& w, const qmpp::HookParams& hp, int ms = 60000) {
    ModelPage* page = w.modelPage();
    auto done = [&] {
        const ModelPage::Shown* s = page->shown();
        return !w.jobs()->busy("model") && s && s->hp.method == hp.method &&
               s->hp.schedule.describe() == hp.schedule.describe() && s->hp.seed == hp.seed;
    };
    QTRY_LOOP_IMPL(done(), ms, 10);
    return done();
}

qmpp::HookParams hook(qmpp::ModelMethod m, qmpp::i64 r, std::uint64_t seed = 0) {
    qmpp::HookParams h;
    h.method = m;
    h.schedule = qmpp::constantSchedule(r);
    h.seed = seed;
    return h;
}

void shot(QWidget& w, const QString& name) {
    if (qEnvironmentVariableIsSet("QMPP_STUDIO_SHOTS"))
        w.grab().save(qEnvironmentVariable("QMPP_STUDIO_SHOTS") + "/" + name + ".png");
}

} // namespace

class TestModelPage : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;

  private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("QuickMergeTests");
        QCoreApplication::setApplicationName("tst_modelpage");
        QSettings().clear();
        if (ModelPage::bundledTestSet().isEmpty())
            QSKIP("the Fashion-MNIST test set is not installed (dataset-fashion-mnist)");
    }
    void cleanupTestCase() { QSettings().clear(); }

    // Showing the page opens the bundled model on the bundled test set; the prediction shown
    // is `qmpp eval`'s on the same image, bit for bit, for the unmerged and the merged model.
    void predictionEqualsQmppEval() {
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        w.pages()->setCurrentWidget(w.modelPage());
        ModelPage* page = w.modelPage();
        QVERIFY(page->hasModel());
        // the page fits the smallest window we support, with the input's docks set aside
        QCoreApplication::processEvents();
        QCOMPARE(w.size(), QSize(1280, 800));
        for (auto* dock : w.findChildren<QDockWidget*>())
            QVERIFY(!dock->isVisible());
        QVERIFY(page->set() && page->set()->count == 500);
        const qmpp::HookParams hp = hook(qmpp::ModelMethod::ToMe, 8);
        page->setParams(hp);
        QVERIFY(page->openSetItem(2));
        QVERIFY(waitShown(w, hp));
        QCOMPARE(page->imageName(), QStringLiteral("t10k-images-idx3-ubyte.gz[2]"));

        QProcess cli;
        const QString out = m_dir.filePath("eval");
        cli.start(QMPP_CLI, {"eval", "--model", kModel, "--dataset", ModelPage::bundledTestSet(),
                             "--limit", "3", "--method", "tome", "--r", "8", "--out", out});
        QVERIFY(cli.waitForFinished(120000));
        QCOMPARE(cli.exitCode(), 0);
        const std::vector<float> plain =
            qmpp::readNpy((out + "/logits_plain.npy").toStdString()).toFloat();
        const std::vector<float> merged =
            qmpp::readNpy((out + "/logits_merged.npy").toStdString()).toFloat();
        const ModelPage::Shown* s = page->shown();
        QCOMPARE(s->plain.logits, std::vector<float>(plain.begin() + 20, plain.begin() + 30));
        QCOMPARE(s->merged.logits, std::vector<float>(merged.begin() + 20, merged.begin() + 30));
        // the text and the bars say the same: class names, top-5 of each side
        const auto top = topProbabilities(s->merged.logits, 5);
        const QString cls = QString::fromStdString(page->modelConfig()->classNames[top[0].first]);
        QVERIFY2(page->predictionText()->text().contains(cls),
                 qPrintable(page->predictionText()->text()));
        QVERIFY(
            page->predictionText()->text().contains(QString::number(100 * top[0].second, 'f', 1)));
        QCOMPARE(page->predictionPlot()->plottableCount(), 2);
        for (int i = 0; i < 2; ++i)
            QVERIFY(static_cast<QCPBars*>(page->predictionPlot()->plottable(i))->data()->size() >=
                    5);
        // the block strip: tokens left per block as the forward counted them, as a share of
        // the unmerged model's
        auto* left = static_cast<QCPBars*>(page->blockPlot()->plottable(0));
        QCOMPARE(left->data()->size(), int(s->merged.blocks.size()));
        for (int l = 0; l < left->data()->size(); ++l)
            QCOMPARE(left->data()->at(l)->value,
                     100.0 * double(s->merged.blocks[std::size_t(l)].tokensOut) /
                         double(s->plain.blocks[std::size_t(l)].tokensOut));
        // every overlay draws, at 1280 x 800 and 1920 x 1080
        page->setBlock(3);
        for (int o = 0; o < modelOverlayNames().size(); ++o) {
            page->setOverlay(ModelOverlay(o));
            QVERIFY(!page->overlayImage().isNull());
        }
        page->setOverlay(ModelOverlay::Sources);
        shot(w, "model-1280");
        w.resize(1920, 1080);
        page->setOverlay(ModelOverlay::Rollout);
        QCoreApplication::processEvents();
        shot(w, "model-1920-rollout");
        page->clickPatch(100);
        shot(w, "model-1920-attention");
        page->setOverlay(ModelOverlay::Saliency);
        shot(w, "model-1920-saliency");
    }
};

QTEST_MAIN(TestModelPage)
#include "tst_modelpage.moc"
