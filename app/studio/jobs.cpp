#include "jobs.h"

#include <QThread>

namespace studio {

void JobContext::check() const {
    if (stopped()) throw qmpp::Cancelled();
}

void JobContext::progress(qint64 done, qint64 total) {
    if (m_sent.isValid() && m_sent.elapsed() < 50 && done < total) return;
    m_sent.restart();
    JobOwner* owner = m_owner;
    const quint64 id = m_id;
    QMetaObject::invokeMethod(
        owner, [owner, id, done, total] { emit owner->progressed(id, done, total); },
        Qt::QueuedConnection);
}

qmpp::Progress JobContext::reporter() {
    return [this](qmpp::i64 done, qmpp::i64 total) {
        progress(done, total);
        return !stopped();
    };
}

JobOwner::JobOwner(QObject* parent) : QObject(parent) {
    qRegisterMetaType<studio::JobEnd>("studio::JobEnd");
}

JobOwner::~JobOwner() {
    for (auto& [id, job] : m_jobs)
        job.stop->store(1);
    for (auto& [name, thread] : m_lanes) {
        // quit after the jobs already queued: each sees its stop flag and returns at once, so
        // none is left behind (with the input it holds) when the thread ends
        auto* last = new QObject;
        last->moveToThread(thread);
        QMetaObject::invokeMethod(
            last,
            [last, thread] {
                last->deleteLater(); // deferred deletes run as the thread finishes
                thread->quit();
            },
            Qt::QueuedConnection);
        thread->wait(); // a running job stops at its next check
        delete thread;
    }
}

QThread* JobOwner::laneThread(const QString& lane) {
    auto it = m_lanes.find(lane);
    if (it != m_lanes.end()) return it->second;
    auto* thread = new QThread;
    thread->setObjectName("qmpp-" + lane);
    thread->start();
    m_lanes.emplace(lane, thread);
    return thread;
}

quint64 JobOwner::start(const QString& lane, const QString& label, Work work, Mode mode) {
    if (mode == Mode::Supersede)
        for (auto& [id, job] : m_jobs)
            if (job.lane == lane) job.stop->store(2);
    const quint64 id = ++m_next;
    const bool wasBusy = busy(lane);
    auto stop = std::make_shared<std::atomic<int>>(0);
    m_jobs.emplace(id, Job{lane, label, stop});
    if (!wasBusy) emit busyChanged(lane, true);
    emit started(id, lane, label);
    // the work runs in the lane's thread (its event loop takes queued calls in order)
    QObject* context = new QObject;
    context->moveToThread(laneThread(lane));
    QMetaObject::invokeMethod(
        context,
        [this, id, stop, work = std::move(work), context] {
            context->deleteLater();
            JobEnd end = JobEnd::Done;
            QString message;
            Then then;
            if (stop->load()) {
                end = stop->load() == 2 ? JobEnd::Superseded : JobEnd::Cancelled;
            } else {
                JobContext c;
                c.m_owner = this;
                c.m_id = id;
                c.m_stop = stop;
                try {
                    const qmpp::StopScope scope(c.flag()); // the engine's loops watch it too
                    then = work(c);
                    if (c.stopped()) // finished, but no longer wanted
                        end = stop->load() == 2 ? JobEnd::Superseded : JobEnd::Cancelled;
                } catch (const qmpp::Cancelled&) {
                    end = stop->load() == 2 ? JobEnd::Superseded : JobEnd::Cancelled;
                } catch (const std::exception& e) {
                    end = JobEnd::Failed;
                    message = QString::fromUtf8(e.what());
                }
            }
            QMetaObject::invokeMethod(
                this, [this, id, end, message, then] { done(id, end, message, then); },
                Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
    return id;
}

void JobOwner::done(quint64 id, JobEnd end, const QString& message, const Then& then) {
    const auto it = m_jobs.find(id);
    if (it == m_jobs.end()) return;
    const QString lane = it->second.lane;
    // a job superseded or cancelled after it returned still does not show its result
    if (end == JobEnd::Done && it->second.stop->load())
        end = it->second.stop->load() == 2 ? JobEnd::Superseded : JobEnd::Cancelled;
    m_jobs.erase(it);
    if (end == JobEnd::Done && then) then();
    emit finished(id, lane, end, message);
    if (!busy(lane)) emit busyChanged(lane, false);
}

void JobOwner::cancel(quint64 id) {
    const auto it = m_jobs.find(id);
    if (it != m_jobs.end()) it->second.stop->store(1);
}

void JobOwner::cancelLane(const QString& lane) {
    for (auto& [id, job] : m_jobs)
        if (job.lane == lane) job.stop->store(1);
}

void JobOwner::supersede(const QString& lane) {
    for (auto& [id, job] : m_jobs)
        if (job.lane == lane) job.stop->store(2);
}

bool JobOwner::busy(const QString& lane) const {
    for (const auto& [id, job] : m_jobs)
        if (job.lane == lane) return true;
    return false;
}

QString JobOwner::label(quint64 id) const {
    const auto it = m_jobs.find(id);
    return it == m_jobs.end() ? QString() : it->second.label;
}

} // namespace studio
