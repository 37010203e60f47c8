// MergeRunner: owns the worker thread that runs the engine. Pages talk to it only through
// queued signals; a newer request supersedes older ones, and a stale result is never emitted.
#pragma once

#include "qmpp/engine.h"
#include "qmpp/inputs.h"
#include "qmpp/views.h"

#include <QImage>
#include <QObject>
#include <QThread>
#include <QTimer>

#include <atomic>
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

class MergeWorker;

class MergeRunner : public QObject {
    Q_OBJECT
  public:
    explicit MergeRunner(QObject* parent = nullptr);
    ~MergeRunner() override;

    void setInput(const StudioInput& input);
    const StudioInput& input() const { return m_input; }
    // Debounced: bursts of changes (a dragged slider) run once, with the last parameters.
    void request(const qmpp::MergeParams& p);
    // Immediately (still on the worker thread).
    void requestNow(const qmpp::MergeParams& p);
    void setDebounceMs(int ms) { m_debounce.setInterval(ms); }
    quint64 latestGeneration() const { return m_latest.load(); }
    bool busy() const { return m_running > 0; }

  signals:
    void resultReady(std::shared_ptr<const studio::RunOutput> out);
    void failed(const QString& message);
    void busyChanged(bool busy);

  private:
    void dispatch();
    void onDone(std::shared_ptr<const studio::RunOutput> out, const QString& error,
                quint64 generation);

    QThread m_thread;
    MergeWorker* m_worker = nullptr;
    QTimer m_debounce;
    StudioInput m_input;
    qmpp::MergeParams m_pending;
    std::shared_ptr<std::atomic<quint64>> m_latestShared =
        std::make_shared<std::atomic<quint64>>(0);
    std::atomic<quint64>& m_latest = *m_latestShared;
    int m_running = 0;
};

} // namespace studio

Q_DECLARE_METATYPE(std::shared_ptr<const studio::RunOutput>)
Q_DECLARE_METATYPE(studio::StudioInput)
Q_DECLARE_METATYPE(qmpp::MergeParams)
