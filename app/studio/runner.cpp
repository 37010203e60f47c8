#include "runner.h"

#include "overlays.h"
#include "qmpp/error.h"

#include <QMetaObject>
#include <chrono>

namespace studio {

namespace {
constexpr qmpp::i64 kSimilaritySide = 512; // heatmap rows at most (block means beyond)
}

// Lives on the worker thread. Keeps its backend between runs (GPU buffers persist) and skips a
// job that a newer request has already superseded.
class MergeWorker : public QObject {
    Q_OBJECT
  public:
    explicit MergeWorker(std::shared_ptr<std::atomic<quint64>> latest)
        : m_latest(std::move(latest)) {}

  public slots:
    void compute(quint64 generation, const studio::StudioInput& input, const qmpp::MergeParams& p) {
        if (generation < m_latest->load()) {
            emit done(nullptr, QString(), generation); // superseded before it started
            return;
        }
        auto out = std::make_shared<RunOutput>();
        out->generation = generation;
        out->params = p;
        QString error;
        try {
            const auto t0 = std::chrono::steady_clock::now();
            out->result = m_session.run(input.tokens(), p);
            out->wallMs =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
            if (generation >= m_latest->load()) makeDisplayImages(input, *out);
            if (input.views && generation >= m_latest->load()) {
                const auto& r = out->result;
                out->similarity = std::make_shared<const qmpp::SimilarityView>(
                    qmpp::similarityView(input.tokens(), r.labels, kSimilaritySide));
                // the axes depend on the tokens only: computed once per input
                if (m_pcaFor.lock() != input.loaded) {
                    m_pca = qmpp::pcaView(input.tokens(), r.merged, r.k);
                    m_pcaFor = input.loaded;
                }
                auto pca = std::make_shared<qmpp::PcaView>(m_pca);
                qmpp::projectMerged(*pca, r.merged, r.k);
                out->pca = pca;
            }
        } catch (const std::exception& e) {
            error = QString::fromStdString(e.what());
            m_session = qmpp::MergeSession(); // a failed device starts afresh next time
        }
        emit done(error.isEmpty() ? std::shared_ptr<const RunOutput>(out) : nullptr, error,
                  generation);
    }

  signals:
    void done(std::shared_ptr<const studio::RunOutput> out, const QString& error,
              quint64 generation);

  private:
    std::shared_ptr<std::atomic<quint64>> m_latest;
    qmpp::MergeSession m_session; // one backend kept between runs
    std::weak_ptr<const qmpp::LoadedInput> m_pcaFor;
    qmpp::PcaView m_pca;
};

MergeRunner::MergeRunner(QObject* parent) : QObject(parent) {
    qRegisterMetaType<std::shared_ptr<const studio::RunOutput>>();
    qRegisterMetaType<studio::StudioInput>("studio::StudioInput");
    qRegisterMetaType<qmpp::MergeParams>("qmpp::MergeParams");
    m_worker = new MergeWorker(m_latestShared);
    m_worker->moveToThread(&m_thread);
    connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &MergeWorker::done, this, &MergeRunner::onDone, Qt::QueuedConnection);
    m_thread.setObjectName("qmpp-merge-worker");
    m_thread.start();
    m_debounce.setSingleShot(true);
    m_debounce.setInterval(40);
    connect(&m_debounce, &QTimer::timeout, this, &MergeRunner::dispatch);
}

MergeRunner::~MergeRunner() {
    m_latest = ~quint64(0); // every queued job is now stale
    m_thread.quit();
    m_thread.wait();
}

void MergeRunner::setInput(const StudioInput& input) {
    m_input = input;
}

void MergeRunner::request(const qmpp::MergeParams& p) {
    m_pending = p;
    ++m_latest; // what is queued or running is stale from now on
    m_debounce.start();
}

void MergeRunner::requestNow(const qmpp::MergeParams& p) {
    m_pending = p;
    ++m_latest;
    m_debounce.stop();
    dispatch();
}

void MergeRunner::dispatch() {
    if (!m_input.loaded) return;
    const quint64 gen = m_latest.load();
    if (m_running++ == 0) emit busyChanged(true);
    QMetaObject::invokeMethod(m_worker, "compute", Qt::QueuedConnection, Q_ARG(quint64, gen),
                              Q_ARG(studio::StudioInput, m_input),
                              Q_ARG(qmpp::MergeParams, m_pending));
}

void MergeRunner::onDone(std::shared_ptr<const RunOutput> out, const QString& error,
                         quint64 generation) {
    if (--m_running == 0) emit busyChanged(false);
    if (generation != m_latest.load()) return; // superseded: never show a stale result
    if (!error.isEmpty())
        emit failed(error);
    else if (out)
        emit resultReady(out);
}

} // namespace studio

#include "runner.moc"
