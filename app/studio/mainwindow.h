// The studio's main window: canvas in the middle, input/overlay and parameter docks, plots below.
#pragma once

#include "comparepage.h"
#include "imagecanvas.h"
#include "inputcontroller.h"
#include "jobbar.h"
#include "jobs.h"
#include "keydialog.h"
#include "lmpanel.h"
#include "modelpage.h"
#include "overlaypanel.h"
#include "paramspanel.h"
#include "pincontroller.h"
#include "plotspanel.h"
#include "profilerpage.h"
#include "runner.h"
#include "timelinepanel.h"
#include "tokenspage.h"
#include "videocontroller.h"

#include <QMainWindow>

#include <functional>

class QLabel;
class QMenu;
class QTabWidget;

namespace studio {

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Loads an image or embeddings file; on failure shows the message and returns false.
    bool openFile(const QString& path, bool quiet = false);
    bool openSample();
    // The bundled text example: Psalm 23 through a small language model trained on the KJV,
    // with its hidden states, attention maps and token strings.
    bool openTextSample();

    // Embeddings: attach hidden states, attention maps or token labels to the open file (an
    // empty path detaches); reloads it, and on failure keeps what was there. The batch item of
    // a [B, N, D] input (-1: all, showing item 0).
    enum class Extra { Hidden, Attention, Labels };
    bool attach(Extra what, const QString& path);
    bool selectBatchItem(int item);
    // Asks again which tensors of the open .safetensors file to use.
    bool chooseTensors();
    // How ambiguous .safetensors files and large images are asked about (InputController).
    using KeyChooser = InputController::KeyChooser;
    using LargeInputChooser = InputController::LargeInputChooser;
    static constexpr qint64 kLargeInput = InputController::kLargeInput;
    void setKeyChooser(KeyChooser c) { m_inputs->setKeyChooser(std::move(c)); }
    void setLargeInputChooser(LargeInputChooser c) { m_inputs->setLargeInputChooser(std::move(c)); }
    const qmpp::InputOptions& inputOptions() const { return m_inputs->options(); }
    // Writes the outputs of the last run into `dir` (the CLI's files); false with a message.
    bool exportResults(const QString& dir, bool force);
    // The results as above plus report.html (the CLI's `qmpp report`) and report.pdf (the same
    // document printed by Qt).
    bool exportReport(const QString& dir, bool force);

    // Video: the frame to show (merged with the current parameters once decoded), playback,
    // and the export of a frame range "A:B" as a job on the "export" lane (progress and Cancel
    // in the status bar; cancel leaves `dir` as it was). Returns the job's id, or 0 with a
    // message when the range or the video is wrong.
    bool isVideo() const { return m_video->isOpen(); }
    void showFrame(qint64 frame) { m_video->showFrame(frame); }
    void setPlaying(bool playing) { m_video->setPlaying(playing); }
    quint64 exportFrames(const QString& dir, const QString& range, bool force) {
        return m_video->exportFrames(dir, range, force);
    }
    // The profile of the current input on the "profile" lane (its id; 0 without an input).
    quint64 profile();
    JobOwner* jobs() { return &m_jobs; }
    // Merges the open input again with the current parameters (debounced unless `now`).
    void rerun(bool now = false);
    JobBar* jobBar() const { return m_jobBar; }
    // Project files (.qmpp, JSON; project.h): the input and its options, the parameters, the
    // overlays, the page and the pin. Opening one reruns the pinned setting first, then the
    // project's own. False with a message naming the file on failure.
    bool saveProject(const QString& path, QString* error);
    bool openProject(const QString& path, bool quiet = false);
    void saveProjectDialog();
    // A/B: pin the last result; later results of the same input are compared with it.
    PinController* pins() const { return m_pins; }
    void pinLastResult();
    TimelinePanel* timeline() const { return m_timeline; }
    VideoSource* videoSource() const { return m_video->source(); }

    MergeRunner* runner() { return &m_runner; }
    ImageCanvas* canvas() const { return m_canvas; }
    TokensPage* tokensPage() const { return m_tokens; }
    ProfilerPage* profilerPage() const { return m_profiler; }
    ComparePage* comparePage() const { return m_compare; }
    // The Model page: the bundled ViT opens the first time the page is shown (or here).
    ModelPage* modelPage() const { return m_model; }
    // The Tokens page's language model view (measures the open text, else Psalm 23).
    LmPanel* lmPanel() const { return m_lm; }
    bool openModel(const QString& path, QString* error = nullptr);
    QTabWidget* pages() const { return m_pages; }
    QString statusText() const;
    QString hoverText() const;
    QMenu* attachMenu() const { return m_attach; }
    ParamsPanel* paramsPanel() const { return m_params; }
    PlotsPanel* plots() const { return m_plots; }
    std::shared_ptr<const RunOutput> lastOutput() const { return m_last; }
    QString lastError() const { return m_lastError; }
    // The `qmpp run` command that reproduces the view (Edit > Copy as CLI command).
    QString cliCommand(const QString& out = QStringLiteral("out")) const;

  protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;

  private:
    void buildPages();
    void buildDocks();
    void buildMenus();
    void connectParts();
    bool openBundled(const QString& name);
    // Loads `path` with the current input options and shows it everywhere.
    bool loadFile(const QString& path, bool quiet);
    void setInputEverywhere(StudioInput in);
    // The window for a newly opened input: title, recent files, error line.
    void becameCurrent(const QString& path);
    bool fail(const QString& title, const QString& msg, bool quiet);
    void onResult(std::shared_ptr<const RunOutput> out);
    void onFailed(const QString& message);
    void openDialog();
    void openTimingsDialog();
    void onJobFinished(quint64 id, const QString& lane, JobEnd end, const QString& message);
    void saveSettings() const;
    void showDocksFor(QWidget* page);
    void showError(const QString& text);

    JobOwner m_jobs; // every long job of the studio (declared first: the others use it)
    MergeRunner m_runner;
    InputController* m_inputs;
    VideoController* m_video = nullptr;
    PinController* m_pins = nullptr;
    JobBar* m_jobBar = nullptr;
    QTabWidget* m_pages = nullptr;
    ImageCanvas* m_canvas = nullptr;
    TokensPage* m_tokens = nullptr;
    ProfilerPage* m_profiler = nullptr;
    ComparePage* m_compare = nullptr;
    ModelPage* m_model = nullptr;
    LmPanel* m_lm = nullptr;
    QList<QDockWidget*> m_docksAside; // hidden while the Model page shows
    ParamsPanel* m_params = nullptr;
    OverlayPanel* m_overlays = nullptr;
    PlotsPanel* m_plots = nullptr;
    TimelinePanel* m_timeline = nullptr;
    QDockWidget* m_timelineDock = nullptr;
    QMenu* m_attach = nullptr; // enabled for token embeddings only
    QAction* m_profile = nullptr;
    QAction* m_exportFrames = nullptr;
    QLabel *m_status = nullptr, *m_hover = nullptr, *m_error = nullptr;
    std::shared_ptr<const RunOutput> m_last;
    QString m_lastError;
    bool m_gpu = false;
};

} // namespace studio
