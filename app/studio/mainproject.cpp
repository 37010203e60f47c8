// MainWindow's file actions: project files (project.h), which save the whole view and reopen
// it; the Open and Open timings dialogs; exports of results and reports.
#include "exports.h"
#include "inputcontroller.h"
#include "mainwindow.h"
#include "plotspanel.h"
#include "profilerpage.h"
#include "project.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QMessageBox>
#include <QSaveFile>
#include <QStatusBar>

#include <iterator>
#include <memory>
#include <stdexcept>

namespace studio {

namespace {

// the page tabs, in order
const char* const kPageNames[] = {"canvas", "tokens", "compare", "profiler"};

} // namespace

bool MainWindow::saveProject(const QString& path, QString* error) {
    auto failed = [&](const QString& why) {
        if (error) *error = why;
        return false;
    };
    if (!m_runner.input().loaded || m_inputs->currentFile().isEmpty() || isVideo())
        return failed(tr("%1: open an image or embeddings first (videos are not saved in "
                         "projects)")
                          .arg(path));
    ProjectState s;
    s.input = QFileInfo(m_inputs->currentFile()).absoluteFilePath();
    s.options = m_inputs->options();
    s.options.patch = m_params->patch();
    s.params = m_params->params();
    // K as the budget gives it: the project keeps the budget (it then fits another N)
    if (m_params->kFollowsBudget()) s.params.k = 0;
    for (int i = 0; i < ImageCanvas::kOverlays; ++i)
        s.overlays.emplace_back(m_canvas->overlay(Overlay(i)), m_canvas->opacity(Overlay(i)));
    const int page = m_pages->currentIndex(); // the tabs in kPageNames's order
    if (page >= 0 && page < int(std::size(kPageNames))) s.page = kPageNames[page];
    if (m_pins->pinned()) s.pin = m_pins->pinnedOutput()->params;
    QSaveFile f(path); // whole or not at all
    if (!f.open(QIODevice::WriteOnly))
        return failed(tr("%1: cannot be written (%2)").arg(path, f.errorString()));
    f.write(projectJson(s));
    if (!f.commit()) return failed(tr("%1: write failed (%2)").arg(path, f.errorString()));
    return true;
}

bool MainWindow::openProject(const QString& path, bool quiet) {
    ProjectState s;
    try {
        s = readProject(path);
    } catch (const std::exception& e) {
        return fail(tr("Open project"), QString::fromUtf8(e.what()), quiet);
    }
    if (!QFileInfo(s.input).isFile())
        return fail(tr("Open project"), tr("%1: its input %2 is not there").arg(path, s.input),
                    quiet);
    for (std::size_t i = 0; i < s.overlays.size() && i < std::size_t(ImageCanvas::kOverlays); ++i) {
        m_canvas->setOverlay(Overlay(i), s.overlays[i].first);
        m_canvas->setOpacity(Overlay(i), s.overlays[i].second);
    }
    // with a pin, the first run is the pinned one; the project's own parameters follow
    const qmpp::MergeParams current = s.params;
    m_params->setParams(s.pin ? *s.pin : current);
    m_params->setPatch(s.options.patch);
    if (!m_inputs->prepare(s.input, s.options.patch, quiet)) return false;
    const qmpp::InputOptions before = m_inputs->options();
    m_inputs->options() = s.options;
    if (!loadFile(s.input, quiet)) {
        m_inputs->options() = before;
        return false;
    }
    for (int i = 0; i < int(std::size(kPageNames)); ++i)
        if (s.page == QLatin1String(kPageNames[i])) m_pages->setCurrentIndex(i);
    if (s.pin) {
        auto once = std::make_shared<QMetaObject::Connection>();
        *once = connect(&m_runner, &MergeRunner::resultReady, this,
                        [this, once, current](std::shared_ptr<const RunOutput> out) {
                            disconnect(*once);
                            m_pins->pin(m_runner.input(), out);
                            m_params->setParams(current);
                            rerun(true);
                        });
    }
    return true;
}

void MainWindow::saveProjectDialog() {
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Save project"), QFileInfo(m_inputs->currentFile()).completeBaseName() + ".qmpp",
        tr("QuickMerge++ Studio projects (*.qmpp)"));
    if (path.isEmpty()) return;
    QString why;
    if (!saveProject(path, &why)) fail(tr("Save project"), why, false);
}

void MainWindow::openDialog() {
    const QString f = QFileDialog::getOpenFileName(
        this, tr("Open"), QString(),
        tr("Images, videos, embeddings and projects (*.png *.jpg *.jpeg *.bmp "
           "*.tif *.tiff *.webp *.mp4 *.avi *.mkv *.mov "
           "*.webm *.npy *.safetensors *.qmpp);;All files (*)"));
    if (!f.isEmpty()) openFile(f);
}

bool MainWindow::exportResults(const QString& dir, bool force) {
    if (!m_last || !m_runner.input().loaded) return fail({}, tr("Nothing to export yet"), true);
    QString error;
    if (!studio::exportResults(dir, force, *m_last, m_runner.input(), m_inputs->options(), &error))
        return fail({}, tr("Export failed: %1").arg(error), true);
    statusBar()->showMessage(tr("Exported to %1").arg(dir), 5000);
    return true;
}

bool MainWindow::exportReport(const QString& dir, bool force) {
    if (!m_last || !m_runner.input().loaded) return fail({}, tr("Nothing to export yet"), true);
    QString error;
    if (!studio::exportReport(dir, force, *m_last, m_runner.input(), m_inputs->options(), &error,
                              [this](const QString& d) { m_model->writeReportSection(d); }))
        return fail({}, tr("Report failed: %1").arg(error), true);
    statusBar()->showMessage(tr("Exported results, report.html and report.pdf to %1").arg(dir),
                             5000);
    return true;
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

} // namespace studio
