// The studio's main window: canvas in the middle, input/overlay and parameter docks, plots below.
#pragma once

#include "imagecanvas.h"
#include "overlaypanel.h"
#include "paramspanel.h"
#include "plotspanel.h"
#include "runner.h"

#include <QMainWindow>
#include <QTemporaryDir>

class QLabel;
class QMenu;

namespace studio {

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Loads an image or embeddings file; on failure shows the message and returns false.
    bool openFile(const QString& path, bool quiet = false);
    bool openSample();
    // Writes the outputs of the last run into `dir` (the CLI's files); false with a message.
    bool exportResults(const QString& dir, bool force);

    MergeRunner* runner() { return &m_runner; }
    ImageCanvas* canvas() const { return m_canvas; }
    ParamsPanel* paramsPanel() const { return m_params; }
    PlotsPanel* plots() const { return m_plots; }
    std::shared_ptr<const RunOutput> lastOutput() const { return m_last; }
    QString lastError() const { return m_lastError; }

  protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;

  private:
    void buildMenus();
    void rerun(bool now = false);
    void onResult(std::shared_ptr<const RunOutput> out);
    void onFailed(const QString& message);
    void addRecent(const QString& path);
    void refreshRecent();
    void openDialog();
    void exportDialog();
    void openTimingsDialog();
    void profile();
    void saveSettings() const;
    void showError(const QString& text);

    MergeRunner m_runner;
    ImageCanvas* m_canvas;
    ParamsPanel* m_params;
    OverlayPanel* m_overlays;
    PlotsPanel* m_plots;
    QMenu* m_recent = nullptr;
    QAction* m_profile = nullptr;
    QLabel *m_status, *m_hover, *m_error;
    std::shared_ptr<const RunOutput> m_last;
    QString m_lastError;
    qmpp::InputOptions m_inputOptions;
    QTemporaryDir m_sampleDir;
    bool m_gpu = false;
};

} // namespace studio
