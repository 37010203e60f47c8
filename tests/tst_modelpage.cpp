// The studio's Model page: the bundled ViT's prediction against `qmpp eval` on the same image,
// supersede under rapid parameter changes, the labelled-set sweep with cancel, the overlays'
// drawing against cases computed by hand, and the clicked token's attention. Offscreen.
#include "colormap.h"
#include "lmpanel.h"
#include "mainwindow.h"
#include "modelpage.h"
#include "modelsweep.h"
#include "modelview.h"
#include "studiotest.h"

#include "qmpp/htmlreport.h"
#include "qmpp/io.h"
#include "testutil.h"

#include <QComboBox>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <cmath>
#include <qcustomplot.h>
#include <set>

using namespace studio;

namespace {

const QString kModel = QStringLiteral(QMPP_SOURCE_DIR "/resources/models/vit-fmnist.safetensors");

using test::waitJob;

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

QRgb groupColourRgb(long long g) {
    return groupColour(g).rgb();
}

// The window at 1280 x 800 with the sample photo merged once.
bool openWithSample(MainWindow& w) {
    w.resize(1280, 800);
    w.show();
    QSignalSpy ready(w.runner(), &MergeRunner::resultReady);
    return w.openSample() && ready.wait(30000);
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
        Q_INIT_RESOURCE(studio);
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

    // Rapid parameter changes: each run supersedes the last, the page ends on the last setting,
    // and what it shows is that setting's forward, never an older one.
    void rapidChangesSupersede() {
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        w.pages()->setCurrentWidget(w.modelPage());
        ModelPage* page = w.modelPage();
        page->setParams(hook(qmpp::ModelMethod::ToMe, 1));
        QVERIFY(waitShown(w, hook(qmpp::ModelMethod::ToMe, 1)));
        // in one go (no events between): only the last can show
        int before = page->shownCount();
        for (int r = 2; r <= 30; ++r)
            page->rBox()->setValue(r);
        QVERIFY(waitShown(w, hook(qmpp::ModelMethod::ToMe, 30)));
        QCOMPARE(page->shownCount() - before, 1);
        // as a drag: events between moves, so some finish and most are superseded
        before = page->shownCount();
        for (int r = 29; r >= 4; --r) {
            page->rBox()->setValue(r);
            QTest::qWait(3);
        }
        QVERIFY(waitShown(w, hook(qmpp::ModelMethod::ToMe, 4)));
        const int shown = page->shownCount() - before;
        QVERIFY2(shown >= 1 && shown < 26, qPrintable(QString::number(shown)));
        const auto model = qmpp::loadVit(kModel.toStdString());
        const qmpp::ForwardResult want = qmpp::vitForward(
            *model, page->set()->pixels.data(), hook(qmpp::ModelMethod::ToMe, 4)); // item 0
        QCOMPARE(page->shown()->merged.logits, want.logits);
    }

    // The labelled set: every method at every value, bands and Pareto front drawn, the numbers
    // those of qmpp::evaluate; a clicked point or image opens in the page; Cancel keeps the last.
    void sweepRunsOpensAndCancels() {
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        w.pages()->setCurrentWidget(w.modelPage());
        ModelPage* page = w.modelPage();
        QString error;
        QVERIFY2(page->openBundledSet(16, &error), qPrintable(error));
        ModelSweepPanel* sw = page->sweepPanel();
        page->views()->setCurrentWidget(sw);
        sw->setMethods({"tome", "random", "quickmerge"});
        sw->setSettings("4,8,16", false);
        sw->setSeeds(2);
        const quint64 id = sw->run(&error);
        QVERIFY2(id, qPrintable(error));
        QCOMPARE(waitJob(w.jobs(), id), JobEnd::Done);
        QCOMPARE(sw->points().size(), std::size_t(9));
        QCOMPARE(sw->progressBar()->value(), sw->progressBar()->maximum());
        QCOMPARE(sw->table()->rowCount(), 9);
        QCOMPARE(sw->curvePlot()->graphCount(), 9); // band low, band high, mean per method
        QCOMPARE(sw->paretoPlot()->graphCount(), 4);
        const auto model = qmpp::loadVit(kModel.toStdString());
        for (const auto& p : sw->points()) {
            QCOMPARE(p.run.seeds.size(), std::size_t(p.method == "tome" ? 1 : 2));
            if (p.method != "tome" || p.setting != 8) continue;
            const qmpp::EvalRun direct = qmpp::evaluate(*model, *page->set(), p.hp, {0});
            QCOMPARE(p.run.measures[0].agreement.hits, direct.measures[0].agreement.hits);
            QCOMPARE(p.run.measures[0].klMean, direct.measures[0].klMean);
            QCOMPARE(p.run.mergedLogits[0], direct.mergedLogits[0]);
        }
        // the misclassified list of the selected point
        sw->selectPoint(5);
        const std::vector<int> wrong = sw->misclassified(5);
        QCOMPARE(sw->misclassifiedList()->count(), int(wrong.size()));
        const auto& pt = sw->points()[5];
        for (int i : wrong) {
            const float* l = pt.run.mergedLogits[0].data() + i * 10;
            QVERIFY(std::max_element(l, l + 10) - l != page->set()->labels[std::size_t(i)]);
        }
        shot(w, "model-sweep-1280");
        w.resize(1920, 1080);
        QCoreApplication::processEvents();
        shot(w, "model-sweep-1920");
        w.resize(1280, 800);
        // a table row opens its setting on the image view
        emit sw->table()->cellClicked(1, 0);
        QCOMPARE(page->views()->currentIndex(), 0);
        QCOMPARE(page->params().method, sw->points()[1].hp.method);
        QCOMPARE(page->params().schedule.r, sw->points()[1].hp.schedule.r);
        if (!wrong.empty()) {
            page->views()->setCurrentWidget(sw);
            sw->selectPoint(5);
            emit sw->misclassifiedList()->itemClicked(sw->misclassifiedList()->item(0));
            QCOMPARE(page->imageName(),
                     QString::fromStdString(page->set()->names[std::size_t(wrong[0])]));
            QCOMPARE(page->params().method, pt.hp.method);
        }
        // cancelled mid-way: the previous points stay
        sw->setMethods({"quickmerge", "tome", "topk", "random"});
        sw->setSettings("2,4,8,12,16", false);
        const quint64 again = sw->run(&error);
        QObject::connect(w.jobs(), &JobOwner::progressed, w.jobs(),
                         [&](quint64 which, qint64 done, qint64) {
                             if (which == again && done >= 60) w.jobs()->cancel(again);
                         });
        QCOMPARE(waitJob(w.jobs(), again), JobEnd::Cancelled);
        QCOMPARE(sw->points().size(), std::size_t(9));
        QVERIFY(sw->runButton()->isEnabled());
        QVERIFY(!sw->cancelButton()->isEnabled());
        // bad values say so and start nothing
        sw->setSettings("4,x", false);
        QCOMPARE(sw->run(&error), quint64(0));
        QVERIFY(error.contains("\"x\""));
        sw->setSettings("0.5,1.5", true);
        QCOMPARE(sw->run(&error), quint64(0));
        QVERIFY(error.contains("(0, 1]"));
    }

    // The drawings by hand: a 4 x 4 input in 2 x 2 patches, drawn twice as large.
    void overlaysDrawAsDefined() {
        QImage in(4, 4, QImage::Format_RGB32);
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 4; ++x)
                in.setPixel(x, y, qRgb(y < 2 ? (x < 2 ? 100 : 200) : 40, 0, y < 2 ? 0 : 80));
        // token 1 holds the top two patches, token 2 the bottom left; the last is dropped
        const QImage src = sourcesImage(in, {1, 1, 2, -1}, 2, 2);
        QCOMPARE(src.size(), QSize(8, 8));
        QCOMPARE(src.pixel(3, 1), qRgb(150, 0, 0)); // the token's mean colour inside
        QCOMPARE(src.pixel(6, 2), qRgb(150, 0, 0));
        QCOMPARE(src.pixel(0, 0), groupColourRgb(1)); // its edge in its colour
        QCOMPARE(src.pixel(4, 3), groupColourRgb(1));
        QCOMPARE(src.pixel(1, 5), qRgb(40, 0, 80));
        QCOMPARE(src.pixel(3, 5), groupColourRgb(2));
        QCOMPARE(src.pixel(6, 6), qRgb(0, 0, 0)); // dropped
        // heat: min-max normalized, NaN darkened
        const QImage heat = heatImage(in, {0.0, 2.0, std::nan(""), 1.0}, 2, 2, 1.0);
        QCOMPARE(heat.pixel(1, 1), viridisAt(0.0));
        QCOMPARE(heat.pixel(6, 1), viridisAt(1.0));
        QCOMPARE(heat.pixel(6, 6), viridisAt(0.5));
        QCOMPARE(heat.pixel(1, 6), qRgb(8, 0, 16));
        // softmax of (0, ln 3): 0.25 and 0.75
        const auto top = topProbabilities({0.0f, std::log(3.0f)}, 5);
        QCOMPARE(top.size(), std::size_t(2));
        QCOMPARE(top[0].first, 1);
        QVERIFY(std::fabs(top[0].second - 0.75) < 1e-7);
    }

    // A click picks the token under it; the overlay is that token's attention in the chosen
    // head, spread over the patches of the tokens it attends to. Bad files name themselves.
    void clickedTokenAndBadFiles() {
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        w.pages()->setCurrentWidget(w.modelPage());
        ModelPage* page = w.modelPage();
        const qmpp::HookParams hp = hook(qmpp::ModelMethod::QuickMerge, 16, 5);
        page->setParams(hp);
        QVERIFY(waitShown(w, hp));
        page->setBlock(4);
        page->setHead(2);
        page->clickPatch(77);
        QCOMPARE(page->overlay(), ModelOverlay::HeadAttention);
        const ModelPage::Shown* s = page->shown();
        const qmpp::BlockTrace& b = s->trace.blocks[4];
        const std::vector<double> got = overlayValues(ModelOverlay::HeadAttention, s->trace,
                                                      s->rollout, *page->modelConfig(), 4, 77, 2);
        const std::vector<double> want =
            qmpp::toPatches(b, qmpp::tokenAttention(b, 3, b.owner[77], 2));
        QCOMPARE(got, want);
        double sum = 0;
        for (double v : qmpp::tokenAttention(b, 3, b.owner[77], 2))
            sum += v;
        QVERIFY(std::fabs(sum - 1) < 1e-5);
        // bad input: the file and the problem, and the page keeps its model
        QString error;
        const QString junk = m_dir.filePath("junk.safetensors");
        QFile f(junk);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not a model");
        f.close();
        QVERIFY(!page->openModel(junk, &error));
        QVERIFY2(error.contains("junk.safetensors"), qPrintable(error));
        QVERIFY(page->hasModel());
        QVERIFY(!page->openImage(junk, &error));
        QVERIFY2(error.contains("junk.safetensors"), qPrintable(error));
        QVERIFY(!page->openSet(m_dir.filePath("missing"), false, 0, &error));
        QVERIFY2(error.contains("missing"), qPrintable(error));
    }

    // The Tokens page's language model view on the text sample: the losses are those `qmpp
    // eval` writes for the same text and settings; the prefix's groups are on the strip.
    void languageModelViewEqualsQmppEval() {
        MainWindow w;
        w.resize(1280, 800);
        w.show();
        QVERIFY(w.openTextSample());
        w.pages()->setCurrentWidget(w.tokensPage());
        LmPanel* lm = w.lmPanel();
        w.tokensPage()->views()->setCurrentWidget(lm);
        QCOMPARE(lm->words().size(), 107);
        lm->setMerge(32, 16, 4, 1, qmpp::ModelMethod::QuickMerge, 2);
        QString error;
        const quint64 id = lm->measure(&error);
        QVERIFY2(id, qPrintable(error));
        QCOMPARE(waitJob(w.jobs(), id), JobEnd::Done);
        const qmpp::LmEvalRun* r = lm->result();
        QVERIFY(r);
        QProcess cli;
        const QString out = m_dir.filePath("eval-lm");
        cli.start(QMPP_CLI,
                  {"eval", "--model", QMPP_SOURCE_DIR "/resources/models/kjv-lm.safetensors",
                   QMPP_SOURCE_DIR "/resources/samples/psalm23.txt", "--window", "32", "--prefix",
                   "16", "--groups", "4", "--at-block", "1", "--method", "quickmerge", "--seeds",
                   "0,1", "--out", out});
        QVERIFY(cli.waitForFinished(120000));
        QCOMPARE(cli.exitCode(), 0);
        const std::vector<float> plain =
            qmpp::readNpy((out + "/nll_plain.npy").toStdString()).toFloat();
        const std::vector<float> merged =
            qmpp::readNpy((out + "/nll_merged.npy").toStdString()).toFloat();
        QCOMPARE(std::size_t(r->positions), plain.size());
        QCOMPARE(r->seeds.size(), std::size_t(2));
        for (std::size_t q = 0; q < plain.size(); ++q) {
            QCOMPARE(float(r->nllPlain[q]), plain[q]);
            const double change =
                (double(merged[q]) + double(merged[plain.size() + q])) / 2 - double(plain[q]);
            QVERIFY(std::fabs(lm->lossChange()[std::size_t(r->scoredWord[q])] - change) < 1e-5);
        }
        // the strip: each window's prefix in K groups, framed; scored words coloured
        const TokenStrip* strip = lm->strip();
        QCOMPARE(strip->count(), qmpp::i64(107));
        QCOMPARE(r->prefixGroups.size(), std::size_t(r->windows));
        std::set<qmpp::i64> firstWindowGroups;
        for (qmpp::i64 g : r->prefixGroups[0])
            firstWindowGroups.insert(g);
        QCOMPARE(firstWindowGroups.size(), std::size_t(4));
        QVERIFY(!strip->spans().empty());
        QVERIFY(strip->describe(20).contains("loss changed"));
        QVERIFY(strip->describe(3).contains("prefix"));
        // the budget sweep: both methods at each K, no change at K = T
        const quint64 sw = lm->sweep(&error);
        QVERIFY2(sw, qPrintable(error));
        QCOMPARE(waitJob(w.jobs(), sw), JobEnd::Done);
        QCOMPARE(lm->sweepPoints().size(), std::size_t(10)); // K = 1, 2, 4, 8, 16 per method
        for (const auto& p : lm->sweepPoints())
            if (p.groups == 16 && p.method == "quickmerge") QVERIFY(std::fabs(p.change) < 1e-6);
        QCOMPARE(lm->sweepPlot()->graphCount(), 6);
        shot(w, "tokens-lm-1280");
        w.resize(1920, 1080);
        QCoreApplication::processEvents();
        shot(w, "tokens-lm-1920");
    }

    // The Compare page's model column: each method inside the bundled model at the compared
    // budget, its agreement and KL those of qmpp::evaluate at that setting.
    void compareHasTheModelColumn() {
        MainWindow w;
        QVERIFY(openWithSample(w));
        ComparePage* page = w.comparePage();
        page->setModelLimit(24); // a few images: the sanitizer build is slow
        w.pages()->setCurrentWidget(page);
        emit page->compareRequested(); // the model page opens the bundled model for it
        QTRY_VERIFY_WITH_TIMEOUT(!page->modelCells().empty() && !w.jobs()->busy("comparemodel"),
                                 600000);
        QCOMPARE(page->modelCells().size(), page->outputs().size());
        QCoreApplication::processEvents();
        QCOMPARE(w.size(), QSize(1280, 800));
        const int rows = page->metricsTable()->rowCount();
        QVERIFY(page->metricsTable()->verticalHeaderItem(rows - 2)->text().contains("agreement"));
        const auto model = qmpp::loadVit(kModel.toStdString());
        for (std::size_t c = 0; c < page->outputs().size(); ++c) {
            const auto& cell = page->modelCells()[c];
            const qmpp::MergeResult& r = page->outputs()[c]->result;
            QCOMPARE(cell.hp.schedule.kind, qmpp::Schedule::Kind::Budget);
            QCOMPARE(cell.hp.schedule.budget, double(r.k) / double(r.labels.size()));
            QCOMPARE(cell.items, qmpp::i64(24));
            if (r.method != "tome") continue;
            qmpp::EvalItems first = *w.modelPage()->set();
            first.count = 24;
            first.pixels.resize(24 * 56 * 56);
            first.labels.resize(24);
            first.names.resize(24);
            const qmpp::EvalRun direct = qmpp::evaluate(*model, first, cell.hp, {cell.hp.seed});
            QCOMPARE(cell.measures.agreement.hits, direct.measures[0].agreement.hits);
            QCOMPARE(cell.measures.klMean, direct.measures[0].klMean);
            QVERIFY(
                page->metricsTable()
                    ->item(rows - 2, int(c))
                    ->text()
                    .contains(QString::number(100 * direct.measures[0].agreement.value, 'f', 1)));
        }
        shot(w, "compare-model-1280");
    }

    // The studio's report carries the model: the shown image's evaluation with its overlays
    // and the labelled set's sweep, each verified by `qmpp report` like any eval folder.
    void reportHasTheModelSection() {
        MainWindow w;
        QVERIFY(openWithSample(w));
        w.pages()->setCurrentWidget(w.modelPage());
        ModelPage* page = w.modelPage();
        const qmpp::HookParams hp = hook(qmpp::ModelMethod::ToMe, 12);
        page->setParams(hp);
        QVERIFY(waitShown(w, hp));
        QString error;
        QVERIFY(page->openBundledSet(24, &error));
        QVERIFY(waitShown(w, hp));
        ModelSweepPanel* sw = page->sweepPanel();
        sw->setMethods({"tome", "topk"});
        sw->setSettings("4,12", false);
        QCOMPARE(waitJob(w.jobs(), sw->run(&error)), JobEnd::Done);
        const QString dir = m_dir.filePath("report");
        QVERIFY2(w.exportReport(dir, false), qPrintable(w.lastError()));
        for (const char* f : {"model/eval.json", "model/overlays.json", "model/predictions.csv",
                              "model/overlays/item0_sources.png", "model-sweep/sweep.json",
                              "report.html", "report.pdf"})
            QVERIFY2(QFileInfo::exists(dir + "/" + f), f);
        const qmpp::ReportDoc doc = qmpp::loadReport(dir.toStdString());
        QCOMPARE(doc.sections.size(), std::size_t(2));
        QVERIFY(doc.verified());
        int modelChecks = 0;
        for (const auto& c : doc.checks)
            modelChecks += QString::fromStdString(c.what).startsWith("model");
        QVERIFY(modelChecks >= 4);
        QFile html(dir + "/report.html");
        QVERIFY(html.open(QIODevice::ReadOnly));
        const QString text = QString::fromUtf8(html.readAll());
        QVERIFY(text.contains("Model in the loop"));
        QVERIFY(text.contains("Predictions"));
        // the model's own logits: the shown prediction
        const std::vector<float> merged =
            qmpp::readNpy((dir + "/model/logits_merged.npy").toStdString()).toFloat();
        QCOMPARE(merged, page->shown()->merged.logits);
        // again without --force: refused, the folder as it was
        QVERIFY(!w.exportReport(dir, false));
        QVERIFY(QFileInfo::exists(dir + "/model/eval.json"));
    }
};

QTEST_MAIN(TestModelPage)
#include "tst_modelpage.moc"
