// The open video: decoding ahead (VideoSource), the timeline, playback at the video's frame
// rate, per-frame timings and flicker, and the export of frame ranges as a job.
#pragma once

#include "jobs.h"
#include "runner.h"
#include "videosource.h"

#include <QElapsedTimer>
#include <QObject>

#include <memory>
#include <vector>

class QDockWidget;
class QWidget;

namespace studio {

class ImageCanvas;
class OverlayPanel;
class ParamsPanel;
class TimelinePanel;

class VideoController : public QObject {
    Q_OBJECT
  public:
    struct Parts {
        QWidget* window;
        JobOwner* jobs;
        MergeRunner* runner;
        ImageCanvas* canvas;
        ParamsPanel* params;
        OverlayPanel* overlays;
        TimelinePanel* timeline;
        QDockWidget* dock;
    };
    explicit VideoController(const Parts& parts);
    ~VideoController() override;

    // Opens `path` at `tubelet` and shows `frame`; false (with failed()) when it cannot decode.
    bool open(const QString& path, bool quiet, int tubelet, qint64 frame);
    // Closes the video (a still input is opened).
    void close();
    bool isOpen() const { return m_video != nullptr; }
    VideoSource* source() const { return m_video.get(); }

    // The frame to show, merged with the current parameters once decoded.
    void showFrame(qint64 frame);
    void setPlaying(bool playing);
    // A merge of the frame shown finished: timings, flicker, and the next frame when playing.
    void onResult(const StudioInput& in, const qmpp::MergeResult& r);

    // The export of frames "A:B" into `dir` on the "export" lane: the job's id, or 0 (with
    // failed()) when the range or the video is wrong.
    quint64 exportFrames(const QString& dir, const QString& range, bool force);
    void exportFramesDialog();

  signals:
    void opened(const QString& path);
    void failed(const QString& title, const QString& message, bool quiet);
    void message(const QString& text);

  private:
    Parts m_p;
    std::unique_ptr<VideoSource> m_video;
    QString m_path, m_error;
    qint64 m_wantFrame = -1;
    qint64 m_prevUnit = -1;
    std::vector<qmpp::i64> m_prevLabels;
    bool m_nextScheduled = false, m_haveResult = false;
    QElapsedTimer m_frameClock;
};

} // namespace studio
