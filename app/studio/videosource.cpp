#include "videosource.h"

#include "qmpp/error.h"

namespace studio {

VideoSource::VideoSource(QObject* parent) : QObject(parent) {}

VideoSource::~VideoSource() {
    stop();
}

void VideoSource::stop() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable()) m_thread.join();
}

void VideoSource::open(const QString& path, const qmpp::VideoOptions& o) {
    stop();
    m_reader = std::make_unique<qmpp::VideoReader>(path.toStdString(), o); // throws on a bad file
    m_info = m_reader->info();
    m_options = o;
    m_options.projection = nullptr;
    m_cache.clear();
    m_target = 0;
    m_stop = false;
    m_thread = std::thread([this] { loop(); });
}

qint64 VideoSource::unitBegin(qint64 frame) const {
    const int w = qmpp::windowOf(m_options);
    return frame - frame % w;
}

std::shared_ptr<const DecodedUnit> VideoSource::unitFor(qint64 frame) {
    std::shared_ptr<const DecodedUnit> unit;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_target = unitBegin(frame);
        const auto it = m_cache.find(m_target);
        if (it != m_cache.end()) unit = it->second;
    }
    m_wake.notify_all();
    return unit;
}

void VideoSource::loop() {
    const int w = qmpp::windowOf(m_options);
    for (;;) {
        qint64 begin = -1;
        {
            std::unique_lock<std::mutex> lock(m_mutex);
            m_wake.wait(lock, [&] {
                if (m_stop) return true;
                for (qint64 b = m_target; b < m_target + kAhead * w && b < m_info.frames; b += w)
                    if (!m_cache.count(b)) return true;
                return false;
            });
            if (m_stop) return;
            // keep the unit before the target (stepping back) and those ahead; drop the rest
            for (auto it = m_cache.begin(); it != m_cache.end();)
                it = (it->first < m_target - w || it->first >= m_target + kAhead * w)
                         ? m_cache.erase(it)
                         : std::next(it);
            for (qint64 b = m_target; b < m_target + kAhead * w && b < m_info.frames; b += w)
                if (!m_cache.count(b)) {
                    begin = b;
                    break;
                }
        }
        auto unit = std::make_shared<DecodedUnit>();
        QString error;
        try {
            qmpp::forEachUnit(
                *m_reader, m_options, {begin, std::min<qint64>(begin + w, m_info.frames)},
                [&](qmpp::VideoUnit& u) {
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
        if (!error.isEmpty() || unit->frames == 0) {
            emit failed(error.isEmpty() ? tr("%1: frame %2 does not decode")
                                              .arg(QString::fromStdString(m_info.path))
                                              .arg(begin)
                                        : error);
            std::lock_guard<std::mutex> lock(m_mutex);
            m_cache[begin] = nullptr; // do not retry a broken unit in a loop
            continue;
        }
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_cache[begin] = unit;
        }
        emit unitReady(begin);
    }
}

} // namespace studio
