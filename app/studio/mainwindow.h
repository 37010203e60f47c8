// The studio's main window: canvas in the middle, input/overlay and parameter docks, plots below.
#pragma once

#include "comparepage.h"
#include "imagecanvas.h"
#include "jobbar.h"
#include "jobs.h"
#include "keydialog.h"
#include "overlaypanel.h"
#include "paramspanel.h"
#include "plotspanel.h"
#include "profilerpage.h"
#include "runner.h"
#include "timelinepanel.h"
#include "tokenspage.h"
#include "videosource.h"

#include <QElapsedTimer>
#include <QMainWindow>
#include <QTemporaryDir>

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
    // How the tensors of an ambiguous .safetensors file are chosen: a dialog unless replaced
    // (tests). Returns false when cancelled.
    using KeyChooser =
        std::function<bool(const QString& path, const std::vector<qmpp::TensorInfo>& tensors,
                           TensorKeys& keys, bool& remember)>;
    void setKeyChooser(KeyChooser c) { m_keyChooser = std::move(c); }
    // An image past kLargeInput tokens: the patch size to tokenize it with (a larger one is
    // offered), its own to run at full size, 0 to cancel. A dialog unless replaced (tests).
    static constexpr qint64 kLargeInput = 20000;
    using LargeInputChooser = std::function<int(const QString& path, qint64 n, int patch,
                                                int suggested, qint64 suggestedN)>;
    void setLargeInputChooser(LargeInputChooser c) { m_largeChooser = std::move(c); }
    const qmpp::InputOptions& inputOptions() const { return m_inputOptions; }
    // Writes the outputs of the last run into `dir` (the CLI's files); false with a message.
    bool exportResults(const QString& dir, bool force);
    // The results as above plus report.html (the CLI's `qmpp report`) and report.pdf (the same
    // document printed by Qt).
    bool exportReport(const QString& dir, bool force);

    // Video: the frame to show (merged with the current parameters once decoded), playback,
    // and the export of a frame range "A:B" as a job on the "export" lane (progress and Cancel
    // in the status bar; cancel leaves `dir` as it was). Returns the job's id, or 0 with a
    // message when the range or the video is wrong.
    bool isVideo() const { return m_video != nullptr; }
    void showFrame(qint64 frame);
    void setPlaying(bool playing);
    quint64 exportFrames(const QString& dir, const QString& range, bool force);
    // The profile of the current input on the "profile" lane (its id; 0 without an input).
    quint64 profile();
    JobOwner* jobs() { return &m_jobs; }
    // Merges the open input again with the current parameters (debounced unless `now`).
    void rerun(bool now = false);
    JobBar* jobBar() const { return m_jobBar; }
    TimelinePanel* timeline() const { return m_timeline; }
    VideoSource* videoSource() const { return m_video.get(); }

    MergeRunner* runner() { return &m_runner; }
    ImageCanvas* canvas() const { return m_canvas; }
    TokensPage* tokensPage() const { return m_tokens; }
    ProfilerPage* profilerPage() const { return m_profiler; }
    ComparePage* comparePage() const { return m_compare; }
    QTabWidget* pages() const { return m_pages; }
    QString statusText() const;
    QString hoverText() const;
    QMenu* attachMenu() const { return m_attach; }
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
    // Unpacks a bundled sample (a Qt resource) into a temporary folder and opens it.
    bool openBundled(const QString& name);
    // Loads `path` with the current input options (keys, extras, batch item).
    bool loadFile(const QString& path, bool quiet);
    // Sets the .safetensors keys: remembered, obvious, or chosen (always when `ask`).
    bool resolveTensorKeys(const QString& path, bool ask, bool quiet);
    void setInputEverywhere(StudioInput in);
    bool openVideo(const QString& path, bool quiet, int tubelet, qint64 frame);
    void onVideoResult(const StudioInput& in, const qmpp::MergeResult& r);
    void exportFramesDialog();
    // Asks for an export folder, and whether to replace results already there; false: cancelled.
    bool chooseExportFolder(const QString& title, QString& dir, bool& force);
    bool fail(const QString& title, const QString& msg, bool quiet);
    void onResult(std::shared_ptr<const RunOutput> out);
    void onFailed(const QString& message);
    void addRecent(const QString& path);
    void refreshRecent();
    void openDialog();
    void exportDialog();
    void openTimingsDialog();
    void onJobFinished(quint64 id, const QString& lane, JobEnd end, const QString& message);
    void saveSettings() const;
    void showError(const QString& text);

    JobOwner m_jobs; // every long job of the studio (declared first: the others use it)
    MergeRunner m_runner;
    JobBar* m_jobBar;
    QTabWidget* m_pages;
    ImageCanvas* m_canvas;
    TokensPage* m_tokens;
    ProfilerPage* m_profiler;
    ComparePage* m_compare;
    QString m_currentFile;
    KeyChooser m_keyChooser;
    LargeInputChooser m_largeChooser;
    ParamsPanel* m_params;
    OverlayPanel* m_overlays;
    PlotsPanel* m_plots;
    QMenu* m_recent = nullptr;
    QMenu* m_attach = nullptr; // enabled for token embeddings only
    QAction* m_profile = nullptr;
    QLabel *m_status, *m_hover, *m_error;
    std::shared_ptr<const RunOutput> m_last;
    QString m_lastError;
    qmpp::InputOptions m_inputOptions;
    QTemporaryDir m_sampleDir;
    bool m_gpu = false;

    TimelinePanel* m_timeline;
    QDockWidget* m_timelineDock;
    QAction* m_exportFrames = nullptr;
    std::unique_ptr<VideoSource> m_video;
    QString m_videoPath;
    qint64 m_wantFrame = -1;
    qint64 m_prevUnit = -1;
    std::vector<qmpp::i64> m_prevLabels;
    bool m_nextScheduled = false;
    QElapsedTimer m_frameClock;
};

} // namespace studio
