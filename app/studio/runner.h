// MergeRunner: the studio's merges, on the JobOwner's merge lane.
#pragma once

#include "jobs.h"
#include "qmpp/diagnostics.h"
#include "qmpp/engine.h"
#include "qmpp/inputs.h"
#include "qmpp/views.h"

#include <QFileInfo>
#include <QImage>
#include <QObject>
#include <QTimer>

#include <memory>

namespace studio {

// What the studio shows for one token set: the engine's result and display images made from
// it on the worker thread (the GUI thread only paints).
struct RunOutput {
    quint64 generation = 0;
    qmpp::MergeParams params;
    qmpp::MergeResult result;
    double wallMs = 0;
    QImage saliency; // [rows, cols] token grid, colormapped
    QImage mask;     // [rows, cols] pi, colormapped (scaled to its maximum)
    QImage clusters; // image resolution: group mean colour with coloured group edges
    QImage merged;   // image resolution: each token replaced by its merged token
    QImage groups;   // image resolution: a distinct colour per group
    qmpp::MethodDiagnostics diagnostics; // of this result (qmpp/diagnostics.h)
    // token views (not for video frames): group-ordered similarity and the 2-D PCA
    std::shared_ptr<const qmpp::SimilarityView> similarity;
    std::shared_ptr<const qmpp::PcaView> pca;
};

// The input the runner merges: shared, immutable once set.
struct StudioInput {
    QString path;
    std::shared_ptr<const qmpp::LoadedInput> loaded;
    const qmpp::TokenSet& tokens() const { return loaded->items.front(); }
    bool isImage() const { return loaded && loaded->image.has_value(); }
    bool isVideo() const { return frame >= 0; }
    // video: the frame shown (loaded->image), the first frame of its merge unit, and the
    // tubelet length T with the frame's place tau in its tubelet
    qint64 frame = -1, unitBegin = 0, unitFrames = 1;
    int tubelet = 1, tau = 0;
    bool views = false; // compute the token views (similarity, PCA) with each result
};

// The merge lane of the studio's JobOwner: a newer request supersedes older ones (they stop
// between pipeline stages), and a stale result is never emitted. Pages talk to it through
// queued signals only.
class MergeRunner : public QObject {
    Q_OBJECT
  public:
    // `jobs`: the studio's owner of long work; null: a runner with its own (tests).
    explicit MergeRunner(JobOwner* jobs = nullptr, QObject* parent = nullptr);
    ~MergeRunner() override;

    void setInput(const StudioInput& input);
    const StudioInput& input() const { return m_input; }
    // Supersedes what runs (it stops at its next stage) and runs `p`, after `debounceMs` of
    // quiet when that is set (default 0: at once, since superseding is cheap).
    void request(const qmpp::MergeParams& p);
    // Immediately (still on the merge lane).
    void requestNow(const qmpp::MergeParams& p);
    void setDebounceMs(int ms) { m_debounce.setInterval(ms); }
    int debounceMs() const { return m_debounce.interval(); }
    quint64 latestGeneration() const { return m_latest; }
    bool busy() const;
    JobOwner* jobs() const { return m_jobs; }

  signals:
    void resultReady(std::shared_ptr<const studio::RunOutput> out);
    void failed(const QString& message);
    void busyChanged(bool busy);

  private:
    struct LaneState;
    void dispatch();

    JobOwner* m_jobs;
    std::shared_ptr<LaneState> m_state;
    QTimer m_debounce;
    StudioInput m_input;
    qmpp::MergeParams m_pending;
    quint64 m_latest = 0, m_lastJob = 0;
};

} // namespace studio

Q_DECLARE_METATYPE(std::shared_ptr<const studio::RunOutput>)
