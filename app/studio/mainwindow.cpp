#include "mainwindow.h"

#include "selection.h"

#include "exports.h"
#include "pincontroller.h"
#include "textformat.h"

#include "qmpp/bench.h"
#include "qmpp/benchfile.h"
#include "qmpp/io.h"

#include <QCloseEvent>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QMimeData>
#include <QScreen>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>

#include <algorithm>

namespace studio {

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), m_runner(&m_jobs), m_inputs(new InputController(this)) {
    setWindowTitle(tr("QuickMerge++ Studio"));
    setAcceptDrops(true);
    buildPages();
    buildDocks();
    m_video = new VideoController(
        {this, &m_jobs, &m_runner, m_canvas, m_params, m_overlays, m_timeline, m_timelineDock});

    m_status = new QLabel(this);
    m_hover = new QLabel(this);
    m_error = new QLabel(this);
    m_error->setStyleSheet("color: #d04030");
    m_jobBar = new JobBar(&m_jobs, this);
    statusBar()->addWidget(m_status);
    auto* pinStatus = new QLabel(this);
    pinStatus->setStyleSheet("color: #1060a0");
    m_pins = new PinController(m_canvas, pinStatus, this);
    linkSelection(new TokenSelection(this), m_canvas, m_tokens, m_plots, m_hover);
    statusBar()->addWidget(pinStatus);
    statusBar()->addWidget(m_error, 1);
    statusBar()->addPermanentWidget(m_hover);
    statusBar()->addPermanentWidget(m_jobBar);

    std::string why;
    m_gpu = qmpp::gpuAvailable(&why);
    const QString noGpu = tr("No usable GPU: %1").arg(QString::fromStdString(why));
    buildMenus();
    if (!m_gpu)
        m_profile->setToolTip(
            tr("No GPU (%1): profiles the CPU backend per stage").arg(QString::fromStdString(why)));

    QSettings settings;
    m_params->setParams(ParamsPanel::readSettings(settings));
    m_params->setGpu(m_gpu, noGpu);
    m_params->setPatch(settings.value("patch", 16).toInt());
    restoreGeometry(settings.value("geometry").toByteArray());
    restoreState(settings.value("windowState").toByteArray());
    if (!settings.contains("geometry")) { // first launch: 1400 x 900, or what the screen has
        const QSize avail = screen() ? screen()->availableGeometry().size() : QSize(1400, 900);
        resize(std::min(1400, avail.width()), std::min(900, avail.height()));
    }
    connectParts();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildPages() {
    m_pages = new QTabWidget(this);
    m_pages->setDocumentMode(true);
    m_canvas = new ImageCanvas(this);
    m_tokens = new TokensPage(this);
    m_compare = new ComparePage(&m_jobs, this);
    m_profiler = new ProfilerPage(this);
    m_model = new ModelPage(&m_jobs, this);
    m_lm = new LmPanel(&m_jobs, this);
    m_tokens->addView(m_lm, tr("Language model in the loop"));
    m_pages->addTab(m_canvas, tr("Canvas"));
    m_pages->addTab(m_tokens, tr("Tokens"));
    m_pages->addTab(m_compare, tr("Compare"));
    m_pages->addTab(m_model, tr("Model"));
    m_pages->addTab(m_profiler, tr("Profiler"));
    // the bundled model loads when the page is first shown, not at start-up
    connect(m_pages, &QTabWidget::currentChanged, this, [this](int) {
        showDocksFor(m_pages->currentWidget());
        if (m_pages->currentWidget() != m_model || m_model->hasModel()) return;
        QString err;
        if (!m_model->openBundledModel(&err)) showError(err);
    });
    connect(m_model, &ModelPage::message, this, &MainWindow::showError);
    connect(m_model, &ModelPage::sourceChanged, this, [this] {
        m_compare->setModel(m_model->model(), m_model->set(), m_model->params().schedule.atBlock);
    });
    setCentralWidget(m_pages);
}

void MainWindow::buildDocks() {
    auto dock = [this](const QString& title, const char* name, QWidget* w, Qt::DockWidgetArea a) {
        auto* d = new QDockWidget(title, this);
        d->setObjectName(QLatin1String(name));
        d->setWidget(w);
        addDockWidget(a, d);
        return d;
    };
    m_overlays = new OverlayPanel(m_canvas, this);
    dock(tr("Input and overlays"), "inputDock", m_overlays, Qt::LeftDockWidgetArea);
    m_params = new ParamsPanel(this);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(m_params);
    scroll->setWidgetResizable(true);
    // wide enough for every control: the dock scrolls down, never sideways
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setMinimumWidth(m_params->minimumSizeHint().width() +
                            scroll->verticalScrollBar()->sizeHint().width() +
                            2 * scroll->frameWidth());
    dock(tr("Parameters"), "paramsDock", scroll, Qt::RightDockWidgetArea);
    m_plots = new PlotsPanel(this);
    dock(tr("Plots"), "plotsDock", m_plots, Qt::BottomDockWidgetArea);
    m_timeline = new TimelinePanel(this);
    m_timelineDock =
        dock(tr("Video timeline"), "timelineDock", m_timeline, Qt::BottomDockWidgetArea);
    m_timelineDock->hide();
}

void MainWindow::connectParts() {
    connect(m_compare, &ComparePage::compareRequested, this, [this] {
        if (!m_model->hasModel()) m_model->openBundledModel(); // for the model column
        QString error;
        if (!m_compare->compare(m_params->params(), &error))
            showError(tr("Compare: %1").arg(error));
    });
    connect(m_compare, &ComparePage::sweepRequested, this, [this] {
        QString error;
        if (!m_compare->sweep(m_params->params(), {}, &error))
            showError(tr("Sweep: %1").arg(error));
    });
    connect(m_profiler, &ProfilerPage::measureRequested, this, [this] { profile(); });
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
    connect(m_canvas, &ImageCanvas::tokenHovered, this, [this](long long, const QString& text) {
        m_hover->setText(QString(text).replace('\n', "  |  "));
    });
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
    connect(&m_jobs, &JobOwner::finished, this, &MainWindow::onJobFinished);
    connect(m_inputs, &InputController::failed, this, &MainWindow::fail);
    connect(m_inputs, &InputController::openRequested, this,
            [this](const QString& f) { openFile(f); });
    connect(m_video, &VideoController::failed, this, &MainWindow::fail);
    connect(m_video, &VideoController::message, this,
            [this](const QString& m) { statusBar()->showMessage(m, 5000); });
    connect(m_video, &VideoController::opened, this, [this](const QString& path) {
        m_hover->clear();
        m_attach->setEnabled(false);
        m_inputs->setCurrentFile(path);
        m_pages->setCurrentWidget(m_canvas); // the token views are for still inputs
        m_exportFrames->setEnabled(true);
        becameCurrent(path);
    });
}

bool MainWindow::fail(const QString& title, const QString& msg, bool quiet) {
    m_lastError = msg;
    if (!quiet) QMessageBox::warning(this, title, msg);
    showError(msg);
    return false;
}

bool MainWindow::openFile(const QString& path, bool quiet) {
    if (path.endsWith(QLatin1String(".qmpp"), Qt::CaseInsensitive)) return openProject(path, quiet);
    if (qmpp::inputKind(path.toStdString()) == qmpp::InputKind::Video)
        return m_video->open(path, quiet, 1, 0);
    return m_inputs->prepare(path, m_params->patch(), quiet) && loadFile(path, quiet);
}

bool MainWindow::loadFile(const QString& path, bool quiet) {
    StudioInput in;
    in.path = path;
    in.loaded = m_inputs->load(path, quiet);
    if (!in.loaded) return false;
    if (m_inputs->options().patch != m_params->patch())
        m_params->setPatch(m_inputs->options().patch); // a large image at a larger patch
    m_video->close();
    m_exportFrames->setEnabled(false);
    const QString abs = QFileInfo(path).absoluteFilePath();
    const bool sameFile =
        abs == m_inputs->currentFile() && m_runner.input().loaded && !m_runner.input().isVideo();
    m_inputs->setCurrentFile(abs);
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
    becameCurrent(path);
    rerun(true);
    return true;
}

void MainWindow::becameCurrent(const QString& path) {
    setWindowTitle(tr("%1 — QuickMerge++ Studio").arg(QFileInfo(path).fileName()));
    m_inputs->addRecent(path);
    m_error->clear();
}

void MainWindow::setInputEverywhere(StudioInput in) {
    m_hover->clear(); // nothing of the last input's hover, selection or pin carries over
    m_pins->clear();
    const bool embeddings = !in.isImage() && !in.isVideo();
    m_attach->setEnabled(embeddings);
    m_attach->setToolTip(embeddings ? QString()
                                    : tr("Hidden states, attention maps and labels go with token "
                                         "embeddings (.npy or .safetensors), not with images"));
    m_runner.setInput(in);
    m_canvas->setInput(in);
    m_tokens->setInput(in, m_inputs->options().batch);
    QStringList words; // a text input: the language model measures its words
    for (const std::string& w : in.tokens().labels)
        words << QString::fromStdString(w);
    m_lm->setWords(words, in.path);
    m_compare->setInput(in);
    m_params->setTokenCount(in.tokens().n);
    m_overlays->setInputDescription(InputController::describe(in, m_inputs->options().batch));
}

bool MainWindow::chooseTensors() {
    const QString file = m_inputs->currentFile();
    if (qmpp::fileExtension(file.toStdString()) != ".safetensors") {
        showError(tr("Choose tensors: open a .safetensors file first"));
        return false;
    }
    return m_inputs->withOptions([](qmpp::InputOptions&) {},
                                 [this, file] {
                                     return m_inputs->resolveTensorKeys(file, true, false) &&
                                            loadFile(file, false);
                                 });
}

bool MainWindow::attach(Extra what, const QString& path) {
    if (m_inputs->currentFile().isEmpty() || !m_runner.input().loaded ||
        m_runner.input().isImage() || m_runner.input().isVideo())
        return fail({},
                    tr("Hidden states, attention maps and labels go with token embeddings (.npy "
                       "or .safetensors)"),
                    true);
    const std::string p = path.toStdString();
    return m_inputs->withOptions(
        [what, &p](qmpp::InputOptions& o) {
            if (what == Extra::Hidden) o.hidden = p, o.hiddenKey.clear();
            if (what == Extra::Attention) o.attention = p, o.attentionKey.clear();
            if (what == Extra::Labels) o.labels = p;
        },
        [this] { return loadFile(m_inputs->currentFile(), true); });
}

bool MainWindow::selectBatchItem(int item) {
    if (m_inputs->currentFile().isEmpty()) return false;
    return m_inputs->withOptions([item](qmpp::InputOptions& o) { o.batch = item; },
                                 [this] { return loadFile(m_inputs->currentFile(), false); });
}

bool MainWindow::openModel(const QString& path, QString* error) {
    return m_model->openModel(path, error);
}

bool MainWindow::openBundled(const QString& name) {
    const QString target = m_inputs->unpackSample(name);
    return !target.isEmpty() && openFile(target);
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

QString MainWindow::cliCommand(const QString& out) const {
    if (!m_runner.input().loaded) return {};
    if (m_runner.input().isVideo()) // a still frame's merge: the video's own options
        return studio::cliCommand(m_runner.input().path, qmpp::InputOptions(), m_params->params(),
                                  out) +
               QStringLiteral(" --frames %1:%2")
                   .arg(m_runner.input().unitBegin)
                   .arg(m_runner.input().unitBegin + m_runner.input().unitFrames);
    return studio::cliCommand(m_runner.input().path, m_inputs->options(), m_params->params(), out);
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
    m_params->setDiagnostics(out->diagnostics, out->params.temperature);
    m_status->setText(tr("%1 · %2 · %3 · %4 · K = %5 · last run %6")
                          .arg(QString::fromStdString(r.method), QString::fromStdString(r.backend),
                               QString::fromStdString(r.precision),
                               QString::fromStdString(r.device))
                          .arg(r.k)
                          .arg(formatDuration(out->wallMs)));
    if (!r.notes.empty()) m_status->setToolTip(QString::fromStdString(r.notes.front()));
    if (m_runner.input().isVideo()) m_video->onResult(m_runner.input(), r);
    m_pins->onResult(m_runner.input(), out);
}

void MainWindow::onFailed(const QString& message) {
    m_video->setPlaying(false);
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

void MainWindow::onJobFinished(quint64, const QString& lane, JobEnd end, const QString& message) {
    if (lane == QLatin1String("merge")) return; // the runner reports its own
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
    ParamsPanel::writeSettings(s, m_params->params());
}

void MainWindow::showDocksFor(QWidget* page) {
    // the Model page has its own controls: the input's docks step aside while it shows, and
    // come back as they were
    const bool model = page == m_model;
    if (model && m_docksAside.isEmpty()) {
        for (QDockWidget* d : findChildren<QDockWidget*>())
            if (d->isVisible()) {
                m_docksAside << d;
                d->hide();
            }
    } else if (!model) {
        for (QDockWidget* d : std::as_const(m_docksAside))
            d->show();
        m_docksAside.clear();
    }
}

void MainWindow::closeEvent(QCloseEvent* e) {
    showDocksFor(nullptr); // the saved layout is the input pages'
    saveSettings();
    QMainWindow::closeEvent(e);
}

} // namespace studio
