#include "videosource.h"

#include "qmpp/error.h"

namespace studio {

namespace {
const QString kLane = QStringLiteral("video");
}

VideoSource::VideoSource(JobOwner* jobs, QObject* parent) : QObject(parent), m_jobs(jobs) {}

VideoSource::~VideoSource() {
    for (const auto& [begin, id] : m_pending)
        m_jobs->cancel(id);
}

void VideoSource::open(const QString& path, const qmpp::VideoOptions& o) {
    for (const auto& [begin, id] : m_pending)
        m_jobs->cancel(id);
    m_pending.clear();
    m_reader = std::make_shared<qmpp::VideoReader>(path.toStdString(), o); // throws on a bad file
    m_info = m_reader->info();
    m_options = o;
    m_options.projection = nullptr;
    m_cache.clear();
    m_target = 0;
}

qint64 VideoSource::unitBegin(qint64 frame) const {
    const int w = qmpp::windowOf(m_options);
    return frame - frame % w;
}

std::shared_ptr<const DecodedUnit> VideoSource::unitFor(qint64 frame) {
    m_target = unitBegin(frame);
    schedule();
    const auto it = m_cache.find(m_target);
    return it == m_cache.end() ? nullptr : it->second;
}

void VideoSource::schedule() {
    const int w = qmpp::windowOf(m_options);
    const qint64 lo = m_target - w, hi = m_target + kAhead * w;
    // keep the unit before the target (stepping back) and those ahead; drop the rest, and stop
    // decoding what is no longer wanted
    for (auto it = m_cache.begin(); it != m_cache.end();)
        it = (it->first < lo || it->first >= hi) ? m_cache.erase(it) : std::next(it);
    for (auto it = m_pending.begin(); it != m_pending.end();) {
        if (it->first < m_target || it->first >= hi) {
            m_jobs->cancel(it->second);
            it = m_pending.erase(it);
        } else {
            ++it;
        }
    }
    for (qint64 b = m_target; b < hi && b < m_info.frames; b += w) {
        if (m_cache.count(b) || m_pending.count(b)) continue;
        const auto reader = m_reader;
        const qmpp::VideoOptions o = m_options;
        const qint64 end = std::min<qint64>(b + w, m_info.frames);
        const QString path = QString::fromStdString(m_info.path);
        m_pending[b] = m_jobs->start(
            kLane, tr("Decoding frames %1 to %2").arg(b).arg(end - 1),
            [this, reader, o, b, end, path](JobContext& c) -> JobOwner::Then {
                c.check();
                auto unit = std::make_shared<DecodedUnit>();
                QString error;
                try {
                    qmpp::forEachUnit(*reader, o, {b, end}, [&](qmpp::VideoUnit& u) {
                        unit->begin = u.begin;
                        unit->frames = u.frames;
                        for (qint64 f = 0; f < u.frames; ++f) {
                            auto in = std::make_shared<qmpp::LoadedInput>();
                            in->kind = qmpp::InputKind::Video;
                            in->sourceShape = {u.tokens.n, u.tokens.d};
                            in->image = std::move(u.images[std::size_t(f)]);
                            // each frame but the last gets a copy; the last takes them
                            in->items.push_back(f + 1 == u.frames ? std::move(u.tokens) : u.tokens);
                            unit->inputs.push_back(std::move(in));
                        }
                        return false;
                    });
                } catch (const std::exception& e) {
                    error = QString::fromUtf8(e.what());
                }
                if (error.isEmpty() && unit->frames == 0)
                    error = tr("%1: frame %2 does not decode").arg(path).arg(b);
                return [this, unit, b, error] {
                    m_pending.erase(b);
                    if (!error.isEmpty()) {
                        m_cache[b] = nullptr; // do not retry a broken unit in a loop
                        emit failed(error);
                        return;
                    }
                    m_cache[b] = unit;
                    emit unitReady(b);
                };
            },
            JobOwner::Mode::Queue);
    }
}

} // namespace studio
