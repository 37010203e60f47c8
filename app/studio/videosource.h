// VideoSource: decodes a video on its own thread, running ahead of the frame being shown, and
// hands the studio one merge unit (frames + tokens) at a time. The GUI thread never decodes.
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/videoexport.h"

#include <QObject>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace studio {

// One decoded unit, made ready on the decoder thread: per frame of the unit, the input the
// runner merges (the unit's tokens as items[0], that frame as the image), so showing a frame
// copies nothing on the GUI thread.
struct DecodedUnit {
    qint64 begin = 0, frames = 0;
    std::vector<std::shared_ptr<const qmpp::LoadedInput>> inputs; // [frames]
    const qmpp::TokenSet& tokens() const { return inputs.front()->items.front(); }
};

class VideoSource : public QObject {
    Q_OBJECT
  public:
    static constexpr int kAhead = 6; // units decoded ahead of the one shown

    explicit VideoSource(QObject* parent = nullptr);
    ~VideoSource() override;

    // Opens the video (InputError with the file's name when it cannot be decoded) and starts
    // the decoder thread.
    void open(const QString& path, const qmpp::VideoOptions& o);
    const qmpp::VideoInfo& info() const { return m_info; }
    const qmpp::VideoOptions& options() const { return m_options; }
    qint64 unitBegin(qint64 frame) const; // first frame of the unit holding `frame`
    // The unit holding `frame` if it is decoded, else nullptr (it is then decoded next and
    // announced by unitReady). Either way decoding runs ahead from there.
    std::shared_ptr<const DecodedUnit> unitFor(qint64 frame);

  signals:
    void unitReady(qint64 begin);
    void failed(const QString& message);

  private:
    void loop();
    void stop();

    qmpp::VideoInfo m_info;
    qmpp::VideoOptions m_options;
    std::unique_ptr<qmpp::VideoReader> m_reader; // used by the decoder thread only
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::map<qint64, std::shared_ptr<const DecodedUnit>> m_cache;
    qint64 m_target = 0;
    bool m_stop = false;
};

} // namespace studio
