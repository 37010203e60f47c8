// The main window's menus and toolbar: every action the studio offers, in one place.
#include "exports.h"
#include "mainwindow.h"
#include "plotstyle.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>
#include <QToolBar>

namespace studio {

void MainWindow::buildMenus() {
    QToolBar* tools = addToolBar(tr("Main"));
    tools->setObjectName("mainToolBar");
    QMenu* file = menuBar()->addMenu(tr("&File"));
    tools->addAction(
        file->addAction(tr("&Open…"), QKeySequence::Open, this, &MainWindow::openDialog));
    m_inputs->setRecentMenu(file->addMenu(tr("Open &recent")));
    file->addAction(tr("Open &sample photo"), this, [this] { openSample(); });
    file->addAction(tr("Open te&xt sample (Psalm 23, small LM)"), this,
                    [this] { openTextSample(); });
    file->addAction(tr("Open &timings (qmpp bench --json)…"), this, &MainWindow::openTimingsDialog);
    file->addAction(tr("Open &model (ViT, .safetensors)…"), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open model"), QString(),
                                                       tr("ViT weights (*.safetensors)"));
        if (f.isEmpty()) return;
        QString err;
        if (openModel(f, &err))
            m_pages->setCurrentWidget(m_model);
        else
            QMessageBox::warning(this, tr("Open model"), err);
    });
    QMenu* extras = m_attach = file->addMenu(tr("&Attach to embeddings"));
    extras->setEnabled(false); // until token embeddings are open
    extras->setToolTipsVisible(true);
    auto attachDialog = [this](Extra what, const QString& title, const QString& filter) {
        const QString f = QFileDialog::getOpenFileName(
            this, title, QFileInfo(m_inputs->currentFile()).path(), filter);
        if (!f.isEmpty() && !attach(what, f)) QMessageBox::warning(this, title, m_lastError);
    };
    const QString arrays = tr("Arrays (*.npy *.safetensors)");
    extras->addAction(tr("&Hidden states [L, N, D]…"), this,
                      [=] { attachDialog(Extra::Hidden, tr("Attach hidden states"), arrays); });
    extras->addAction(tr("&Attention maps [L, (H,) N, N]…"), this,
                      [=] { attachDialog(Extra::Attention, tr("Attach attention maps"), arrays); });
    extras->addAction(tr("Token &labels (one per line)…"), this, [=] {
        attachDialog(Extra::Labels, tr("Attach token labels"), tr("Text (*.txt);;All files (*)"));
    });
    extras->addSeparator();
    extras->addAction(tr("&Choose tensors of this .safetensors…"), this,
                      [this] { chooseTensors(); });
    extras->addAction(tr("&Detach all"), this, [this] {
        m_inputs->withOptions(
            [](qmpp::InputOptions& o) { o.hidden.clear(), o.attention.clear(), o.labels.clear(); },
            [this] { return loadFile(m_inputs->currentFile(), false); });
    });
    file->addSeparator();
    auto exportTo = [this](const QString& title, bool report) {
        QString dir;
        bool force = false;
        if (!chooseExportFolder(this, title, dir, force)) return;
        if (!(report ? exportReport(dir, force) : exportResults(dir, force)))
            QMessageBox::warning(this, tr("Export failed"), m_lastError);
    };
    tools->addAction(file->addAction(tr("&Export results…"), QKeySequence(tr("Ctrl+E")), this,
                                     [=] { exportTo(tr("Export results into"), false); }));
    file->addAction(tr("Export &report (HTML and PDF)…"), this,
                    [=] { exportTo(tr("Export results and report into"), true); });
    m_exportFrames =
        file->addAction(tr("Export video &frames…"), m_video, &VideoController::exportFramesDialog);
    m_exportFrames->setEnabled(false);
    file->addAction(tr("Save canvas as &figure (SVG, PDF or PNG)…"), this, [this] {
        const QImage shown = m_canvas->render();
        saveFigureDialog(this, tr("canvas"), nullptr, &shown);
    });
    file->addSeparator();
    file->addAction(tr("Save &project…"), QKeySequence::Save, this, &MainWindow::saveProjectDialog);
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    edit->addAction(tr("Copy as &CLI command"), QKeySequence(tr("Ctrl+Shift+C")), this, [this] {
        const QString c = cliCommand();
        if (c.isEmpty()) return showError(tr("Copy as CLI command: open an input first"));
        QApplication::clipboard()->setText(c);
        statusBar()->showMessage(tr("Copied: %1").arg(c), 8000);
    });
    QMenu* run = menuBar()->addMenu(tr("&Run"));
    tools->addAction(
        run->addAction(tr("&Rerun now"), QKeySequence(tr("F5")), this, [this] { rerun(true); }));
    m_profile = run->addAction(tr("&Profile (GPU variants, or the CPU per stage)"), this,
                               &MainWindow::profile);
    tools->addAction(m_profile);
    run->addSeparator();
    run->addAction(tr("&Pin this result as A (compare later runs with it)"),
                   QKeySequence(tr("Ctrl+P")), this, [this] {
                       pinLastResult();
                       if (m_pins->pinned()) m_canvas->setOverlay(Overlay::Changed, true);
                   });
    auto* unpin = run->addAction(tr("&Clear the pin"), this, [this] { m_pins->clear(); });
    unpin->setEnabled(false);
    connect(m_pins, &PinController::pinChanged, unpin, &QAction::setEnabled);
    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* d : findChildren<QDockWidget*>())
        view->addAction(d->toggleViewAction());
    tools->addAction(view->addAction(tr("&Fit to window"), QKeySequence(tr("Ctrl+0")), m_canvas,
                                     &ImageCanvas::fitToWindow));
}

void MainWindow::pinLastResult() {
    m_pins->pin(m_runner.input(), m_last);
}

} // namespace studio
