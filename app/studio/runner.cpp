#include "runner.h"

#include "overlays.h"
#include "qmpp/error.h"

#include <chrono>

namespace studio {

namespace {

constexpr qmpp::i64 kSimilaritySide = 512; // heatmap rows at most (block means beyond)
const QString kLane = QStringLiteral("merge");

} // namespace

// What the merge lane keeps between runs, used by one job at a time: the session (its backend,
// with device buffers, persists) and the PCA axes of the last input.
struct MergeRunner::LaneState {
    qmpp::MergeSession session;
    std::weak_ptr<const qmpp::LoadedInput> pcaFor;
    qmpp::PcaView pca;

    // On the lane: the engine's result, the display images and the token views, stopping
    // between stages once superseded.
    std::shared_ptr<RunOutput> compute(quint64 generation, const StudioInput& input,
                                       qmpp::MergeParams p, JobContext& c) {
        auto out = std::make_shared<RunOutput>();
        out->generation = generation;
        out->params = p;
        p.progress = c.reporter();
        try {
            const auto t0 = std::chrono::steady_clock::now();
            out->result = session.run(input.tokens(), p);
            out->wallMs =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
        } catch (const qmpp::Cancelled&) {
            throw;
        } catch (...) {
            session = qmpp::MergeSession(); // a failed device starts afresh next time
            throw;
        }
        c.check();
        makeDisplayImages(input, *out);
        out->diagnostics = qmpp::diagnose(out->result, p.epsilon);
        if (input.views) {
            c.check();
            const auto& r = out->result;
            out->similarity = std::make_shared<const qmpp::SimilarityView>(
                qmpp::similarityView(input.tokens(), r.labels, kSimilaritySide));
            c.check();
            // the axes depend on the tokens only: computed once per input
            if (pcaFor.lock() != input.loaded) {
                pca = qmpp::pcaView(input.tokens(), r.merged, r.k);
                pcaFor = input.loaded;
            }
            auto view = std::make_shared<qmpp::PcaView>(pca);
            qmpp::projectMerged(*view, r.merged, r.k);
            out->pca = view;
        }
        return out;
    }
};

MergeRunner::MergeRunner(JobOwner* jobs, QObject* parent)
    : QObject(parent), m_jobs(jobs ? jobs : new JobOwner(this)),
      m_state(std::make_shared<LaneState>()) {
    qRegisterMetaType<std::shared_ptr<const studio::RunOutput>>();
    m_debounce.setSingleShot(true);
    m_debounce.setInterval(0);
    connect(&m_debounce, &QTimer::timeout, this, &MergeRunner::dispatch);
    connect(m_jobs, &JobOwner::finished, this,
            [this](quint64 id, const QString& lane, JobEnd end, const QString& message) {
                if (lane == kLane && id == m_lastJob && end == JobEnd::Failed) emit failed(message);
            });
    connect(m_jobs, &JobOwner::busyChanged, this, [this](const QString& lane, bool busy) {
        if (lane == kLane) emit busyChanged(busy);
    });
}

MergeRunner::~MergeRunner() {
    m_jobs->cancelLane(kLane);
}

void MergeRunner::setInput(const StudioInput& input) {
    m_input = input;
}

bool MergeRunner::busy() const {
    return m_jobs->busy(kLane);
}

void MergeRunner::request(const qmpp::MergeParams& p) {
    m_pending = p;
    ++m_latest; // what is queued or running is stale from now on: it stops at its next stage
    m_jobs->supersede(kLane);
    if (m_debounce.interval() > 0)
        m_debounce.start();
    else
        dispatch(); // the superseded run stops at its next stage; this one queues behind it
}

void MergeRunner::requestNow(const qmpp::MergeParams& p) {
    m_pending = p;
    ++m_latest;
    m_debounce.stop();
    dispatch();
}

void MergeRunner::dispatch() {
    if (!m_input.loaded) return;
    const quint64 gen = m_latest;
    const StudioInput input = m_input;
    qmpp::MergeParams p = m_pending;
    p.progress = nullptr;
    auto state = m_state;
    m_lastJob = m_jobs->start(kLane, tr("Merging %1").arg(QFileInfo(input.path).fileName()),
                              [this, gen, input, p, state](JobContext& c) -> JobOwner::Then {
                                  std::shared_ptr<const RunOutput> out =
                                      state->compute(gen, input, p, c);
                                  return [this, out, gen] {
                                      if (gen == m_latest)
                                          emit resultReady(out); // never a stale result
                                  };
                              });
}

} // namespace studio
