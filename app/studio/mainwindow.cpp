#include "mainwindow.h"

#include "qmpp/bench.h"
#include "qmpp/check.h"
#include "qmpp/error.h"
#include "qmpp/export.h"
#include "qmpp/htmlreport.h"
#include "qmpp/io.h"
#include "qmpp/report.h"
#include "qmpp/videoexport.h"
#include "reportpdf.h"
#include "textformat.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressDialog>
#include <QPushButton>
#include <QScreen>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QThread>
#include <QTimer>
#include <QToolBar>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace studio {

namespace {

constexpr int kMaxRecent = 8;

QString describeInput(const StudioInput& in, qmpp::i64 batchItem) {
    const auto& t = in.tokens();
    QString s = QStringLiteral("<b>%1</b><br>").arg(QFileInfo(in.path).fileName().toHtmlEscaped());
    if (in.isImage()) {
        const auto& im = *in.loaded->image;
        s += QObject::tr("image %1×%2 (resized from %3×%4)<br>%5×%6 patches of %7 px<br>")
                 .arg(im.width)
                 .arg(im.height)
                 .arg(im.originalWidth)
                 .arg(im.originalHeight)
                 .arg(t.gridCols)
                 .arg(t.gridRows)
                 .arg(im.patch);
    }
    s += QObject::tr("N = %1 tokens, D = %2").arg(t.n).arg(t.d);
    if (in.loaded->batched)
        s += QObject::tr("<br>batch of %1: showing item 0").arg(in.loaded->items.size());
    else if (in.loaded->kind == qmpp::InputKind::Embeddings && in.loaded->sourceShape.size() == 3)
        s += QObject::tr("<br>item %1 of a batch of %2")
                 .arg(batchItem)
                 .arg(in.loaded->sourceShape[0]);
    if (!t.labels.empty()) s += QObject::tr("<br>token strings: %1").arg(t.labels.size());
    if (t.hiddenLayers) s += QObject::tr("<br>hidden states: L = %1").arg(t.hiddenLayers);
    if (t.attnLayers)
        s += QObject::tr("<br>attention maps: L = %1, H = %2").arg(t.attnLayers).arg(t.attnHeads);
    return s;
}

void writeParams(QSettings& s, const qmpp::MergeParams& p) {
    s.beginGroup("params");
    s.setValue("budget", p.budget);
    s.setValue("temperature", p.temperature);
    s.setValue("epsilon", p.epsilon);
    s.setValue("gamma", p.gamma);
    s.setValue("alpha", p.alpha);
    s.setValue("layers", p.layers);
    s.setValue("refine", p.refine);
    s.setValue("seed", qulonglong(p.seed));
    s.setValue("method", int(p.method));
    s.setValue("cluster", int(p.cluster));
    s.setValue("backend", int(p.backend));
    s.setValue("precision", int(p.precision));
    s.endGroup();
}

qmpp::MergeParams readParams(QSettings& s) {
    qmpp::MergeParams p;
    s.beginGroup("params");
    p.budget = s.value("budget", p.budget).toDouble();
    p.temperature = s.value("temperature", p.temperature).toDouble();
    p.epsilon = s.value("epsilon", p.epsilon).toDouble();
    p.gamma = s.value("gamma", p.gamma).toDouble();
    p.alpha = s.value("alpha", p.alpha).toDouble();
    p.layers = s.value("layers", p.layers).toInt();
    p.refine = s.value("refine", p.refine).toInt();
    p.seed = s.value("seed", qulonglong(p.seed)).toULongLong();
    p.method = qmpp::Method(std::clamp(s.value("method", 0).toInt(), 0, 3));
    p.cluster = qmpp::ClusterMethod(s.value("cluster", int(p.cluster)).toInt());
    p.backend = qmpp::BackendKind(s.value("backend", int(qmpp::BackendKind::Cpu)).toInt());
    p.precision = qmpp::Precision(s.value("precision", int(p.precision)).toInt());
    s.endGroup();
    return p;
}

} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), m_runner(&m_jobs) {
    setWindowTitle(tr("QuickMerge++ Studio"));
    setAcceptDrops(true);
    m_pages = new QTabWidget(this);
    m_pages->setDocumentMode(true);
    m_canvas = new ImageCanvas(this);
    m_tokens = new TokensPage(this);
    m_pages->addTab(m_canvas, tr("Canvas"));
    m_pages->addTab(m_tokens, tr("Tokens"));
    m_compare = new ComparePage(&m_jobs, this);
    m_pages->addTab(m_compare, tr("Compare"));
    connect(m_compare, &ComparePage::compareRequested, this, [this] {
        QString error;
        if (!m_compare->compare(m_params->params(), &error))
            showError(tr("Compare: %1").arg(error));
    });
    connect(m_compare, &ComparePage::sweepRequested, this, [this] {
        QString error;
        if (!m_compare->sweep(m_params->params(), {}, &error))
            showError(tr("Sweep: %1").arg(error));
    });
    m_profiler = new ProfilerPage(this);
    m_pages->addTab(m_profiler, tr("Profiler"));
    connect(m_profiler, &ProfilerPage::measureRequested, this, [this] { profile(); });
    setCentralWidget(m_pages);
    connect(m_pages, &QTabWidget::currentChanged, this, [this] {
        // the token views are computed only while their page is shown, for the input shown
        if (!m_runner.input().loaded || m_runner.input().isVideo()) return;
        StudioInput in = m_runner.input();
        in.views = m_pages->currentWidget() == m_tokens;
        m_runner.setInput(in);
        if (in.views && m_last && !m_last->similarity) rerun(true); // m_last: this input's
        if (m_pages->currentWidget() == m_compare) m_compare->paramsChanged(m_params->params());
    });
    connect(m_tokens, &TokensPage::batchItemChanged, this, [this](int i) { selectBatchItem(i); });
    connect(m_tokens, &TokensPage::tokenHovered, this,
            [this](const QString& t) { m_hover->setText(t); });
    m_largeChooser = [this](const QString& path, qint64 n, int patch, int suggested,
                            qint64 suggestedN) {
        QMessageBox box(QMessageBox::Question, tr("A large input"),
                        tr("%1 makes %2 tokens at %3-pixel patches. Merging that many takes a "
                           "while on every change.")
                            .arg(QFileInfo(path).fileName())
                            .arg(n)
                            .arg(patch),
                        QMessageBox::Cancel, this);
        QPushButton* smaller =
            box.addButton(tr("Use %1-pixel patches (%2 tokens)").arg(suggested).arg(suggestedN),
                          QMessageBox::AcceptRole);
        QPushButton* full = box.addButton(tr("Run all %1").arg(n), QMessageBox::DestructiveRole);
        box.setDefaultButton(smaller);
        box.exec();
        return box.clickedButton() == smaller ? suggested : box.clickedButton() == full ? patch : 0;
    };
    m_keyChooser = [this](const QString& path, const std::vector<qmpp::TensorInfo>& tensors,
                          TensorKeys& keys, bool& remember) {
        TensorKeysDialog d(path, tensors, keys, this);
        if (d.exec() != QDialog::Accepted) return false;
        keys = d.keys();
        remember = d.remember();
        return true;
    };

    m_overlays = new OverlayPanel(m_canvas, this);
    auto* inputDock = new QDockWidget(tr("Input and overlays"), this);
    inputDock->setObjectName("inputDock");
    inputDock->setWidget(m_overlays);
    addDockWidget(Qt::LeftDockWidgetArea, inputDock);

    m_params = new ParamsPanel(this);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(m_params);
    scroll->setWidgetResizable(true);
    // wide enough for every control: the dock scrolls down, never sideways
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setMinimumWidth(m_params->minimumSizeHint().width() +
                            scroll->verticalScrollBar()->sizeHint().width() +
                            2 * scroll->frameWidth());
    auto* paramsDock = new QDockWidget(tr("Parameters"), this);
    paramsDock->setObjectName("paramsDock");
    paramsDock->setWidget(scroll);
    addDockWidget(Qt::RightDockWidgetArea, paramsDock);

    m_plots = new PlotsPanel(this);
    auto* plotsDock = new QDockWidget(tr("Plots"), this);
    plotsDock->setObjectName("plotsDock");
    plotsDock->setWidget(m_plots);
    addDockWidget(Qt::BottomDockWidgetArea, plotsDock);

    m_timeline = new TimelinePanel(this);
    m_timelineDock = new QDockWidget(tr("Video timeline"), this);
    m_timelineDock->setObjectName("timelineDock");
    m_timelineDock->setWidget(m_timeline);
    addDockWidget(Qt::BottomDockWidgetArea, m_timelineDock);
    m_timelineDock->hide();
    connect(m_timeline, &TimelinePanel::frameRequested, this, &MainWindow::showFrame);
    connect(m_timeline, &TimelinePanel::playToggled, this, &MainWindow::setPlaying);
    connect(m_timeline, &TimelinePanel::tubeletChanged, this, [this](int t) {
        if (m_video) openVideo(m_videoPath, false, t, m_timeline->frame());
    });

    m_status = new QLabel(this);
    m_hover = new QLabel(this);
    m_error = new QLabel(this);
    m_error->setStyleSheet("color: #d04030");
    m_jobBar = new JobBar(&m_jobs, this);
    statusBar()->addWidget(m_status);
    statusBar()->addWidget(m_error, 1);
    statusBar()->addPermanentWidget(m_hover);
    statusBar()->addPermanentWidget(m_jobBar);
    connect(&m_jobs, &JobOwner::finished, this, &MainWindow::onJobFinished);

    std::string why;
    m_gpu = qmpp::gpuAvailable(&why);
    m_params->setGpu(m_gpu, tr("No usable GPU: %1").arg(QString::fromStdString(why)));
    buildMenus();
    if (!m_gpu)
        m_profile->setToolTip(
            tr("No GPU (%1): profiles the CPU backend per stage").arg(QString::fromStdString(why)));

    QSettings settings;
    m_params->setParams(readParams(settings));
    if (!m_gpu) m_params->setGpu(false, tr("No usable GPU: %1").arg(QString::fromStdString(why)));
    m_params->setPatch(settings.value("patch", 16).toInt());
    restoreGeometry(settings.value("geometry").toByteArray());
    restoreState(settings.value("windowState").toByteArray());
    if (!settings.contains("geometry")) { // first launch: 1400 x 900, or what the screen has
        const QSize avail = screen() ? screen()->availableGeometry().size() : QSize(1400, 900);
        resize(std::min(1400, avail.width()), std::min(900, avail.height()));
    }

    connect(m_params, &ParamsPanel::paramsChanged, this, [this] {
        rerun();
        m_compare->paramsChanged(m_params->params());
    });
    connect(m_params, &ParamsPanel::patchChanged, this, [this](int) {
        if (m_runner.input().loaded) openFile(m_runner.input().path);
    });
    connect(&m_runner, &MergeRunner::resultReady, this, &MainWindow::onResult);
    connect(&m_runner, &MergeRunner::failed, this, &MainWindow::onFailed);
    connect(&m_runner, &MergeRunner::busyChanged, this, [this](bool busy) {
        const QString base = m_status->text().section(" · running", 0, 0);
        m_status->setText(busy ? base + tr(" · running…") : base); // cleared on failure too
    });
    connect(m_canvas, &ImageCanvas::tokenHovered, this, [this](long long, const QString& text) {
        m_hover->setText(QString(text).replace('\n', "  |  "));
    });
    refreshRecent();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
    QToolBar* tools = addToolBar(tr("Main"));
    tools->setObjectName("mainToolBar");
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open =
        file->addAction(tr("&Open…"), QKeySequence::Open, this, &MainWindow::openDialog);
    tools->addAction(open);
    m_recent = file->addMenu(tr("Open &recent"));
    file->addAction(tr("Open &sample photo"), this, [this] { openSample(); });
    file->addAction(tr("Open te&xt sample (Psalm 23, small LM)"), this,
                    [this] { openTextSample(); });
    file->addAction(tr("Open &timings (qmpp bench --json)…"), this, &MainWindow::openTimingsDialog);
    QMenu* extras = m_attach = file->addMenu(tr("&Attach to embeddings"));
    extras->setEnabled(false); // until token embeddings are open
    extras->setToolTipsVisible(true);
    auto attachDialog = [this](Extra what, const QString& title, const QString& filter) {
        const QString f =
            QFileDialog::getOpenFileName(this, title, QFileInfo(m_currentFile).path(), filter);
        if (!f.isEmpty() && !attach(what, f)) QMessageBox::warning(this, title, m_lastError);
    };
    extras->addAction(tr("&Hidden states [L, N, D]…"), this, [=] {
        attachDialog(Extra::Hidden, tr("Attach hidden states"), tr("Arrays (*.npy *.safetensors)"));
    });
    extras->addAction(tr("&Attention maps [L, (H,) N, N]…"), this, [=] {
        attachDialog(Extra::Attention, tr("Attach attention maps"),
                     tr("Arrays (*.npy *.safetensors)"));
    });
    extras->addAction(tr("Token &labels (one per line)…"), this, [=] {
        attachDialog(Extra::Labels, tr("Attach token labels"), tr("Text (*.txt);;All files (*)"));
    });
    extras->addSeparator();
    extras->addAction(tr("&Choose tensors of this .safetensors…"), this,
                      [this] { chooseTensors(); });
    extras->addAction(tr("&Detach all"), this, [this] {
        m_inputOptions.hidden.clear();
        m_inputOptions.attention.clear();
        m_inputOptions.labels.clear();
        if (!m_currentFile.isEmpty()) loadFile(m_currentFile, false);
    });
    file->addSeparator();
    tools->addAction(file->addAction(tr("&Export results…"), QKeySequence(tr("Ctrl+E")), this,
                                     &MainWindow::exportDialog));
    file->addAction(tr("Export &report (HTML and PDF)…"), this, [this] {
        QString dir;
        bool force = false;
        if (!chooseExportFolder(tr("Export results and report into"), dir, force)) return;
        if (!exportReport(dir, force)) QMessageBox::warning(this, tr("Report failed"), m_lastError);
    });
    m_exportFrames =
        file->addAction(tr("Export video &frames…"), this, &MainWindow::exportFramesDialog);
    m_exportFrames->setEnabled(false);
    file->addAction(tr("Save canvas as &PNG…"), this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save canvas"), "canvas.png",
                                                       tr("PNG images (*.png)"));
        if (!f.isEmpty() && !m_canvas->render().save(f)) showError(tr("Cannot write %1").arg(f));
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    QMenu* run = menuBar()->addMenu(tr("&Run"));
    tools->addAction(
        run->addAction(tr("&Rerun now"), QKeySequence(tr("F5")), this, [this] { rerun(true); }));
    m_profile = run->addAction(tr("&Profile (GPU variants, or the CPU per stage)"), this,
                               &MainWindow::profile);
    tools->addAction(m_profile);
    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* d : findChildren<QDockWidget*>())
        view->addAction(d->toggleViewAction());
    tools->addAction(view->addAction(tr("&Fit to window"), QKeySequence(tr("Ctrl+0")), m_canvas,
                                     &ImageCanvas::fitToWindow));
}

bool MainWindow::fail(const QString& title, const QString& msg, bool quiet) {
    m_lastError = msg;
    if (!quiet) QMessageBox::warning(this, title, msg);
    showError(msg);
    return false;
}

bool MainWindow::openFile(const QString& path, bool quiet) {
    m_inputOptions.patch = m_params->patch();
    if (qmpp::inputKind(path.toStdString()) == qmpp::InputKind::Video)
        return openVideo(path, quiet, 1, 0);
    const QString abs = QFileInfo(path).absoluteFilePath();
    if (abs != m_currentFile) { // a new file: nothing attached, all of a batch
        const int patch = m_inputOptions.patch;
        m_inputOptions = qmpp::InputOptions();
        m_inputOptions.patch = patch;
    }
    if (qmpp::fileExtension(path.toStdString()) == ".safetensors" &&
        !resolveTensorKeys(path, false, quiet))
        return false;
    return loadFile(path, quiet);
}

bool MainWindow::loadFile(const QString& path, bool quiet) {
    StudioInput in;
    in.path = path;
    try {
        in.loaded = std::make_shared<const qmpp::LoadedInput>(
            qmpp::loadInput(path.toStdString(), m_inputOptions));
        // past kLargeInput tokens, an image may be tokenized at a larger patch instead
        if (in.isImage() && in.tokens().n > kLargeInput && m_largeChooser) {
            const int patch = m_inputOptions.patch;
            const double f = std::sqrt(double(in.tokens().n) / double(kLargeInput));
            const int suggested = patch * int(std::ceil(f));
            const auto& im = *in.loaded->image;
            const qint64 suggestedN = qint64(std::max(1, im.originalWidth / suggested)) *
                                      std::max(1, im.originalHeight / suggested);
            const int chosen = m_largeChooser(path, in.tokens().n, patch, suggested, suggestedN);
            if (chosen == 0)
                return fail(tr("Open cancelled"),
                            tr("%1: not opened (%2 tokens)")
                                .arg(QFileInfo(path).fileName())
                                .arg(in.tokens().n),
                            true);
            if (chosen != patch) {
                m_inputOptions.patch = chosen;
                m_params->setPatch(chosen);
                in.loaded = std::make_shared<const qmpp::LoadedInput>(
                    qmpp::loadInput(path.toStdString(), m_inputOptions));
            }
        }
        // the data checks of a run (finite values in range, shapes), as the CLI makes them when
        // it loads the file: a file that cannot run never becomes the open input
        qmpp::MergeParams any;
        any.k = 1;
        for (const auto& item : in.loaded->items)
            qmpp::validate(item, any);
    } catch (const std::exception& e) {
        return fail(
            tr("Open failed"),
            tr("Cannot open %1:\n%2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what())),
            quiet);
    }
    setPlaying(false);
    m_video.reset();
    m_timelineDock->hide();
    m_exportFrames->setEnabled(false);
    const bool sameFile = QFileInfo(path).absoluteFilePath() == m_currentFile &&
                          m_runner.input().loaded && !m_runner.input().isVideo();
    m_currentFile = QFileInfo(path).absoluteFilePath();
    QWidget* page = sameFile       ? m_pages->currentWidget()
                    : in.isImage() ? static_cast<QWidget*>(m_canvas)
                                   : m_tokens;
    in.views = page == m_tokens;
    // the new input everywhere first: a page switch then works on it, never on the last one
    setInputEverywhere(in);
    m_last.reset();
    {
        const QSignalBlocker quiet(m_pages);
        m_pages->setCurrentWidget(page);
    }
    setWindowTitle(tr("%1 — QuickMerge++ Studio").arg(QFileInfo(path).fileName()));
    if (!path.startsWith(m_sampleDir.path())) addRecent(path);
    m_error->clear();
    rerun(true);
    return true;
}

void MainWindow::setInputEverywhere(StudioInput in) {
    m_hover->clear(); // nothing of the last input's hover or selection carries over
    const bool embeddings = !in.isImage() && !in.isVideo();
    m_attach->setEnabled(embeddings);
    m_attach->setToolTip(embeddings ? QString()
                                    : tr("Hidden states, attention maps and labels go with token "
                                         "embeddings (.npy or .safetensors), not with images"));
    m_runner.setInput(in);
    m_canvas->setInput(in);
    m_tokens->setInput(in, m_inputOptions.batch);
    m_compare->setInput(in);
    m_params->setTokenCount(in.tokens().n);
    m_overlays->setInputDescription(describeInput(in, m_inputOptions.batch));
}

bool MainWindow::resolveTensorKeys(const QString& path, bool ask, bool quiet) {
    std::vector<qmpp::TensorInfo> tensors;
    try {
        tensors = qmpp::listTensors(path.toStdString());
    } catch (const std::exception& e) {
        return fail(
            tr("Open failed"),
            tr("Cannot open %1:\n%2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what())),
            quiet);
    }
    bool ambiguous = false;
    TensorKeys keys = defaultTensorKeys(tensors, ambiguous);
    QSettings settings;
    const QString id = QStringLiteral("tensorKeys/") +
                       QString::fromLatin1(QFileInfo(path).absoluteFilePath().toUtf8().toBase64(
                           QByteArray::Base64UrlEncoding));
    const QStringList saved = settings.value(id).toStringList();
    if (saved.size() == 3) {
        const TensorKeys remembered{saved[0], saved[1], saved[2]};
        if (tensorKeysFit(tensors, remembered)) keys = remembered, ambiguous = false;
    }
    if (ambiguous || ask) {
        bool remember = true;
        if (!m_keyChooser || !m_keyChooser(path, tensors, keys, remember))
            return fail(tr("Open cancelled"),
                        tr("%1: no tensors chosen").arg(QFileInfo(path).fileName()), true);
        QString why;
        if (!tensorKeysFit(tensors, keys, &why))
            return fail(tr("Open failed"), tr("%1: %2").arg(QFileInfo(path).fileName(), why),
                        quiet);
        if (remember) settings.setValue(id, QStringList{keys.tokens, keys.hidden, keys.attention});
    }
    const std::string file = path.toStdString();
    m_inputOptions.key = keys.tokens.toStdString();
    // tensors of this file; files attached separately stay attached
    if (!keys.hidden.isEmpty())
        m_inputOptions.hidden = file, m_inputOptions.hiddenKey = keys.hidden.toStdString();
    else if (m_inputOptions.hidden == file)
        m_inputOptions.hidden.clear(), m_inputOptions.hiddenKey.clear();
    if (!keys.attention.isEmpty())
        m_inputOptions.attention = file, m_inputOptions.attentionKey = keys.attention.toStdString();
    else if (m_inputOptions.attention == file)
        m_inputOptions.attention.clear(), m_inputOptions.attentionKey.clear();
    return true;
}

bool MainWindow::chooseTensors() {
    if (qmpp::fileExtension(m_currentFile.toStdString()) != ".safetensors") {
        showError(tr("Choose tensors: open a .safetensors file first"));
        return false;
    }
    const qmpp::InputOptions before = m_inputOptions;
    if (!resolveTensorKeys(m_currentFile, true, false) || !loadFile(m_currentFile, false)) {
        m_inputOptions = before;
        return false;
    }
    return true;
}

bool MainWindow::attach(Extra what, const QString& path) {
    if (m_currentFile.isEmpty() || !m_runner.input().loaded || m_runner.input().isImage() ||
        m_runner.input().isVideo()) {
        m_lastError = tr("Hidden states, attention maps and labels go with token embeddings (.npy "
                         "or .safetensors)");
        showError(m_lastError);
        return false;
    }
    const qmpp::InputOptions before = m_inputOptions;
    const std::string p = path.toStdString();
    switch (what) {
    case Extra::Hidden:
        m_inputOptions.hidden = p, m_inputOptions.hiddenKey.clear();
        break;
    case Extra::Attention:
        m_inputOptions.attention = p, m_inputOptions.attentionKey.clear();
        break;
    case Extra::Labels:
        m_inputOptions.labels = p;
        break;
    }
    if (!loadFile(m_currentFile, true)) {
        m_inputOptions = before;
        return false;
    }
    return true;
}

bool MainWindow::selectBatchItem(int item) {
    if (m_currentFile.isEmpty()) return false;
    const qmpp::InputOptions before = m_inputOptions;
    m_inputOptions.batch = item;
    if (!loadFile(m_currentFile, false)) {
        m_inputOptions = before;
        return false;
    }
    return true;
}

bool MainWindow::openBundled(const QString& name) {
    const QString target = m_sampleDir.filePath(name);
    if (!QFile::exists(target) && !QFile::copy(":/samples/" + name, target)) {
        showError(tr("Cannot unpack the bundled sample %1").arg(name));
        return false;
    }
    return openFile(target);
}

bool MainWindow::openSample() {
    return openBundled("chelsea.png");
}

bool MainWindow::openTextSample() {
    return openBundled("psalm23.safetensors");
}

void MainWindow::rerun(bool now) {
    if (!m_runner.input().loaded) return;
    const qmpp::MergeParams p = m_params->params();
    if (now)
        m_runner.requestNow(p);
    else
        m_runner.request(p);
}

void MainWindow::onResult(std::shared_ptr<const RunOutput> out) {
    m_last = out;
    m_lastError.clear();
    m_error->clear();
    m_canvas->setOutput(out);
    m_plots->setOutput(out);
    if (!m_runner.input().isVideo()) m_tokens->setOutput(out);
    const auto& r = out->result;
    m_params->setFidelity(r.metrics.fidelityOk, r.metrics.normMassRetention);
    m_status->setText(tr("%1 · %2 · %3 · %4 · K = %5 · last run %6")
                          .arg(QString::fromStdString(r.method), QString::fromStdString(r.backend),
                               QString::fromStdString(r.precision),
                               QString::fromStdString(r.device))
                          .arg(r.k)
                          .arg(formatDuration(out->wallMs)));
    if (!r.notes.empty()) m_status->setToolTip(QString::fromStdString(r.notes.front()));
    if (m_video && m_runner.input().isVideo()) onVideoResult(m_runner.input(), r);
}

void MainWindow::onFailed(const QString& message) {
    setPlaying(false);
    m_lastError = message;
    showError(tr("Run failed: %1").arg(message));
}

QString MainWindow::statusText() const {
    return m_status->text();
}
QString MainWindow::hoverText() const {
    return m_hover->text();
}

void MainWindow::showError(const QString& text) {
    m_error->setText(QString(text).replace('\n', ' '));
    m_error->setToolTip(text);
}

void MainWindow::addRecent(const QString& path) {
    QSettings s;
    QStringList files = s.value("recentFiles").toStringList();
    const QString abs = QFileInfo(path).absoluteFilePath();
    files.removeAll(abs);
    files.prepend(abs);
    while (files.size() > kMaxRecent)
        files.removeLast();
    s.setValue("recentFiles", files);
    refreshRecent();
}

void MainWindow::refreshRecent() {
    m_recent->clear();
    const QStringList files = QSettings().value("recentFiles").toStringList();
    for (const QString& f : files)
        m_recent->addAction(QFileInfo(f).fileName(), this, [this, f] { openFile(f); })
            ->setToolTip(f);
    m_recent->setEnabled(!files.isEmpty());
}

void MainWindow::openDialog() {
    const QString f =
        QFileDialog::getOpenFileName(this, tr("Open"), QString(),
                                     tr("Images, videos and embeddings (*.png *.jpg *.jpeg *.bmp "
                                        "*.tif *.tiff *.webp *.mp4 *.avi *.mkv *.mov "
                                        "*.webm *.npy *.safetensors);;All files (*)"));
    if (!f.isEmpty()) openFile(f);
}

bool MainWindow::exportResults(const QString& dir, bool force) {
    if (!m_last || !m_runner.input().loaded) {
        showError(tr("Nothing to export yet"));
        return false;
    }
    qmpp::RunRecord run;
    run.inputPath = m_runner.input().path.toStdString();
    run.inputOptions = m_inputOptions;
    if (run.inputOptions.batch < 0)
        run.inputOptions.batch = m_runner.input().loaded->batched ? 0 : -1;
    qmpp::LoadedInput one = *m_runner.input().loaded; // the studio shows (and exports) item 0
    one.items.resize(1);
    one.batched = false;
    run.input = &one;
    run.params = m_last->params;
    run.results = {m_last->result};
    try {
        qmpp::exportRun(dir.toStdString(), force, run);
    } catch (const std::exception& e) {
        m_lastError = QString::fromUtf8(e.what());
        showError(tr("Export failed: %1").arg(m_lastError));
        return false;
    }
    statusBar()->showMessage(tr("Exported to %1").arg(dir), 5000);
    return true;
}

bool MainWindow::exportReport(const QString& dir, bool force) {
    if (!exportResults(dir, force)) return false;
    try {
        const qmpp::ReportDoc doc = qmpp::loadReport(dir.toStdString());
        qmpp::writeHtmlReport(doc);
        QString error;
        if (!writeReportPdf(doc, QDir(dir).filePath("report.pdf"), &error))
            throw std::runtime_error(error.toStdString());
    } catch (const std::exception& e) {
        m_lastError = QString::fromUtf8(e.what());
        showError(tr("Report failed: %1").arg(m_lastError));
        return false;
    }
    statusBar()->showMessage(tr("Exported results, report.html and report.pdf to %1").arg(dir),
                             5000);
    return true;
}

bool MainWindow::chooseExportFolder(const QString& title, QString& dir, bool& force) {
    dir = QFileDialog::getExistingDirectory(this, title);
    if (dir.isEmpty()) return false;
    force = false;
    try {
        qmpp::OutputDir::checkTarget(dir.toStdString(), false);
    } catch (const qmpp::InputError&) {
        if (QMessageBox::question(this, tr("Replace results?"),
                                  tr("%1 already holds results. Replace them?").arg(dir)) !=
            QMessageBox::Yes)
            return false;
        force = true;
    }
    return true;
}

void MainWindow::exportDialog() {
    QString dir;
    bool force = false;
    if (!chooseExportFolder(tr("Export results into"), dir, force)) return;
    if (!exportResults(dir, force)) QMessageBox::warning(this, tr("Export failed"), m_lastError);
}

void MainWindow::openTimingsDialog() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open timings"), QString(),
                                                   tr("qmpp bench JSON (*.json)"));
    if (f.isEmpty()) return;
    try {
        m_plots->loadBench(f);
        m_profiler->addFile(f);
        m_pages->setCurrentWidget(m_profiler);
    } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Cannot open timings"), QString::fromUtf8(e.what()));
    }
}

quint64 MainWindow::profile() {
    // Each GPU variant (the CPU backend without a GPU) on the current input, per stage, as core's
    // profileInput measures it, shown as bench rows on the Profiler page and in the timing plot.
    if (!m_runner.input().loaded) return 0;
    const bool gpu = m_gpu;
    const StudioInput in = m_runner.input();
    qmpp::MergeParams base = m_params->params();
    base.progress = nullptr;
    return m_jobs.start(
        QStringLiteral("profile"),
        tr("Profiling %1").arg(gpu ? tr("the GPU variants") : tr("the CPU stages")),
        [this, in, base, gpu](JobContext& c) -> JobOwner::Then {
            std::string err;
            const nlohmann::json bench =
                qmpp::profileInput(in.tokens(), base, gpu, err, c.reporter());
            const QString error = QString::fromStdString(err);
            return [this, bench, error] {
                if (!error.isEmpty()) showError(tr("Profile: %1").arg(error));
                if (bench["results"].empty()) return;
                const QString device = QString::fromStdString(bench["device"].get<std::string>());
                m_plots->setBench(bench, tr("Profile: %1").arg(device));
                qmpp::BenchFile f = qmpp::parseBenchJson(bench, "measured here");
                m_profiler->addBench(f);
                statusBar()->showMessage(
                    tr("Profiled %1 stage rows on %2").arg(f.rows.size()).arg(device), 5000);
            };
        });
}

void MainWindow::onJobFinished(quint64 id, const QString& lane, JobEnd end,
                               const QString& message) {
    if (lane == QLatin1String("merge")) return; // the runner reports its own
    Q_UNUSED(id);
    switch (end) {
    case JobEnd::Done:
    case JobEnd::Superseded:
        return;
    case JobEnd::Cancelled: // the user's choice: a note, not an error
        m_lastError = tr("%1 cancelled").arg(lane);
        statusBar()->showMessage(
            lane == QLatin1String("export")  ? tr("Export cancelled; the folder was left as it was")
            : lane == QLatin1String("sweep") ? tr("Sweep cancelled; the previous curves stay")
                                             : tr("Cancelled"),
            5000);
        return;
    case JobEnd::Failed:
        m_lastError = message;
        showError(tr("%1 failed: %2").arg(lane, message));
        return;
    }
}

bool MainWindow::openVideo(const QString& path, bool quiet, int tubelet, qint64 frame) {
    setPlaying(false);
    qmpp::VideoOptions o;
    o.patch = m_params->patch();
    o.tubelet = tubelet;
    auto source = std::make_unique<VideoSource>(&m_jobs);
    try {
        source->open(path, o);
    } catch (const std::exception& e) {
        return fail(
            tr("Open failed"),
            tr("Cannot open %1:\n%2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what())),
            quiet);
    }
    connect(source.get(), &VideoSource::unitReady, this, [this](qint64 begin) {
        if (m_video && m_wantFrame >= 0 && m_video->unitBegin(m_wantFrame) == begin)
            showFrame(m_wantFrame);
    });
    connect(source.get(), &VideoSource::failed, this, [this](const QString& msg) {
        setPlaying(false);
        fail(tr("Video"), msg, true);
    });
    m_video = std::move(source);
    m_videoPath = path;
    m_hover->clear();
    m_attach->setEnabled(false);
    m_currentFile = QFileInfo(path).absoluteFilePath();
    m_pages->setCurrentWidget(m_canvas); // the token views are for still inputs
    m_prevUnit = -1;
    m_prevLabels.clear();
    const qmpp::VideoInfo& info = m_video->info();
    m_timeline->setVideo(info.frames, info.fps, tubelet);
    m_timelineDock->show();
    m_exportFrames->setEnabled(true);
    setWindowTitle(tr("%1 — QuickMerge++ Studio").arg(QFileInfo(path).fileName()));
    addRecent(path);
    m_error->clear();
    m_wantFrame = -1;
    showFrame(std::min<qint64>(frame, info.frames - 1));
    return true;
}

void MainWindow::showFrame(qint64 frame) {
    if (!m_video) return;
    frame = std::clamp<qint64>(frame, 0, m_video->info().frames - 1);
    m_wantFrame = frame;
    m_timeline->setFrame(frame);
    const auto unit = m_video->unitFor(frame);
    if (!unit) return; // decoding; unitReady brings us back
    const auto& loaded = unit->inputs[std::size_t(frame - unit->begin)];
    const qmpp::TokenSet& tokens = unit->tokens();
    StudioInput in;
    in.path = m_videoPath;
    in.loaded = loaded;
    in.frame = frame;
    in.unitBegin = unit->begin;
    in.unitFrames = unit->frames;
    in.tubelet = m_video->options().tubelet;
    in.tau = int((frame - unit->begin) % in.tubelet);
    const bool sameShape = m_runner.input().isVideo() && m_runner.input().tokens().n == tokens.n;
    m_runner.setInput(in);
    if (sameShape) {
        m_canvas->setFrame(in);
    } else {
        m_canvas->setInput(in);
        m_params->setTokenCount(tokens.n);
    }
    const qmpp::VideoInfo& info = m_video->info();
    const auto& im = *loaded->image;
    m_overlays->setInputDescription(
        tr("<b>%1</b><br>video %2×%3, %4 frames at %5 fps (%6)<br>frame %7 tokenized at "
           "%8×%9<br>%10×%11 %12 of %13 px, "
           "N = %14, D = %15")
            .arg(QFileInfo(m_videoPath).fileName().toHtmlEscaped())
            .arg(info.width)
            .arg(info.height)
            .arg(info.frames)
            .arg(info.fps, 0, 'f', 2)
            .arg(QString::fromStdString(info.decoder))
            .arg(frame)
            .arg(im.width)
            .arg(im.height)
            .arg(tokens.gridCols)
            .arg(tokens.gridRows)
            .arg(in.tubelet > 1 ? tr("tubelets of %1 frames").arg(in.tubelet) : tr("patches"))
            .arg(im.patch)
            .arg(tokens.n)
            .arg(tokens.d));
    m_frameClock.restart();
    rerun(true);
}

void MainWindow::setPlaying(bool playing) {
    m_timeline->setPlaying(playing && m_video);
    if (playing && m_video && m_last && !m_runner.busy() && !m_nextScheduled) {
        if (m_timeline->frame() + 1 >= m_video->info().frames)
            showFrame(0); // play again from the start
        else
            showFrame(m_timeline->frame() + 1);
    }
}

void MainWindow::onVideoResult(const StudioInput& in, const qmpp::MergeResult& r) {
    m_timeline->addTiming(in.frame,
                          r.timings.back().ms / double(std::max<qint64>(1, in.unitFrames)));
    const qint64 w = qmpp::windowOf(m_video->options());
    if (in.unitBegin != m_prevUnit) {
        if (m_prevUnit >= 0 && m_prevUnit == in.unitBegin - w &&
            m_prevLabels.size() == r.labels.size())
            m_timeline->addFlicker(in.unitBegin, qmpp::groupFlicker(m_prevLabels, r.labels));
        m_prevUnit = in.unitBegin;
        m_prevLabels = r.labels;
    }
    if (!m_timeline->playing() || m_nextScheduled) return;
    const qint64 next = in.frame + 1;
    if (next >= m_video->info().frames) {
        setPlaying(false);
        return;
    }
    // at the video's frame rate when the merge keeps up, as fast as it goes otherwise
    const double fps = m_video->info().fps > 0 ? m_video->info().fps : 25.0;
    const int wait = std::max(0, int(1000.0 / fps - double(m_frameClock.elapsed())));
    m_nextScheduled = true;
    QTimer::singleShot(wait, this, [this, next] {
        m_nextScheduled = false;
        if (m_video && m_timeline->playing()) showFrame(next);
    });
}

quint64 MainWindow::exportFrames(const QString& dir, const QString& rangeText, bool force) {
    if (!m_video) {
        showError(tr("Export frames: open a video first"));
        return 0;
    }
    qmpp::FrameRange range;
    try {
        range = qmpp::resolveRange(m_video->info(), qmpp::parseFrameRange(rangeText.toStdString()));
    } catch (const std::exception& e) {
        m_lastError = QString::fromUtf8(e.what());
        showError(tr("Export failed: %1").arg(m_lastError));
        return 0;
    }
    setPlaying(false);
    const std::string path = m_videoPath.toStdString(), out = dir.toStdString();
    const qmpp::VideoOptions o = m_video->options();
    qmpp::MergeParams p = m_params->params();
    p.progress = nullptr;
    return m_jobs.start(
        QStringLiteral("export"),
        tr("Exporting frames %1 of %2").arg(rangeText, QFileInfo(m_videoPath).fileName()),
        [this, path, o, range, p, out, force, dir, rangeText](JobContext& c) -> JobOwner::Then {
            qmpp::exportVideo(path, o, range, p, out, force, c.reporter());
            return [this, dir, rangeText] {
                statusBar()->showMessage(tr("Exported frames %1 to %2").arg(rangeText, dir), 5000);
            };
        },
        JobOwner::Mode::Queue);
}

void MainWindow::exportFramesDialog() {
    if (!m_video) return;
    bool ok = false;
    const QString range = QInputDialog::getText(
        this, tr("Export video frames"), tr("Frames A:B (half-open: A … B−1):"), QLineEdit::Normal,
        QStringLiteral("0:%1").arg(m_video->info().frames), &ok);
    if (!ok || range.isEmpty()) return;
    QString dir;
    bool force = false;
    if (!chooseExportFolder(tr("Export frames into"), dir, force)) return;
    if (!exportFrames(dir, range, force))
        QMessageBox::warning(this, tr("Export failed"), m_lastError);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    const auto urls = e->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile()) openFile(urls.first().toLocalFile());
}

void MainWindow::saveSettings() const {
    QSettings s;
    s.setValue("geometry", saveGeometry());
    s.setValue("windowState", saveState());
    s.setValue("patch", m_params->patch());
    writeParams(s, m_params->params());
}

void MainWindow::closeEvent(QCloseEvent* e) {
    saveSettings();
    QMainWindow::closeEvent(e);
}

} // namespace studio
