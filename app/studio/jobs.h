// JobOwner: the one owner of the studio's long work (merges, compare, sweeps, profiles, video
// decoding and export). Each job runs on a lane, a worker thread of its own kind; the GUI thread
// only starts, cancels and receives. A job reports progress and learns that it should stop
// through its JobContext; what it returns (a continuation) runs on the GUI thread only if the
// job finished and was neither cancelled nor superseded. Everything crosses threads as queued
// calls: nothing busy-waits, nothing blocks the GUI.
#pragma once

#include "qmpp/progress.h"

#include <QElapsedTimer>
#include <QObject>
#include <QString>

#include <atomic>
#include <functional>
#include <map>
#include <memory>

class QThread;

namespace studio {

enum class JobEnd { Done, Cancelled, Superseded, Failed };

class JobOwner;

// What a running job sees.
class JobContext {
  public:
    // The user cancelled it, or a newer job of its lane superseded it.
    bool stopped() const { return m_stop->load() != 0; }
    // Throws qmpp::Cancelled when stopped: call it between steps.
    void check() const;
    // (done, total), forwarded to the GUI at most every 50 ms (and always the last step).
    void progress(qint64 done, qint64 total);
    // For core's long calls: reports progress and returns !stopped().
    qmpp::Progress reporter();
    // The flag the engine's loops watch (qmpp::StopScope) to stop within a stage.
    const std::atomic<int>* flag() const { return m_stop.get(); }

  private:
    friend class JobOwner;
    JobOwner* m_owner = nullptr;
    quint64 m_id = 0;
    std::shared_ptr<std::atomic<int>> m_stop; // 0 running, 1 cancelled, 2 superseded
    QElapsedTimer m_sent;
};

class JobOwner : public QObject {
    Q_OBJECT
  public:
    // What a job returns: the GUI-thread continuation (may be empty).
    using Then = std::function<void()>;
    using Work = std::function<Then(JobContext&)>;
    // Supersede: a new job stops every earlier job of its lane (queued ones never start, the
    // running one stops at its next check). Queue: jobs of the lane run one after another.
    enum class Mode { Supersede, Queue };

    explicit JobOwner(QObject* parent = nullptr);
    ~JobOwner() override; // stops every job and joins the lanes

    quint64 start(const QString& lane, const QString& label, Work work,
                  Mode mode = Mode::Supersede);
    void cancel(quint64 id);
    void cancelLane(const QString& lane);
    // Marks every job of the lane superseded (they stop at their next check; no result shows).
    void supersede(const QString& lane);
    bool busy(const QString& lane) const; // a job of the lane queued or running
    int active() const { return int(m_jobs.size()); }
    QString label(quint64 id) const;

  signals:
    void started(quint64 id, const QString& lane, const QString& label);
    void progressed(quint64 id, qint64 done, qint64 total);
    // After the continuation ran (Done). `message`: the failure's text.
    void finished(quint64 id, const QString& lane, studio::JobEnd end, const QString& message);
    void busyChanged(const QString& lane, bool busy);

  private:
    friend class JobContext;
    struct Job {
        QString lane, label;
        std::shared_ptr<std::atomic<int>> stop;
    };
    QThread* laneThread(const QString& lane);
    void done(quint64 id, JobEnd end, const QString& message, const Then& then);

    std::map<QString, QThread*> m_lanes;
    std::map<quint64, Job> m_jobs; // queued or running
    quint64 m_next = 0;
};

} // namespace studio

Q_DECLARE_METATYPE(studio::JobEnd)
