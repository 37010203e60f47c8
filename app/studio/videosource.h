// VideoSource: decodes a video on the JobOwner's "video" lane, running ahead of the frame being
// shown, and hands the studio one merge unit (frames + tokens) at a time. The GUI thread never
// decodes; the decoded units live on the GUI thread.
#pragma once

#include "jobs.h"

#include "qmpp/inputs.h"
#include "qmpp/videoexport.h"

#include <QObject>

#include <map>
#include <memory>
#include <set>

namespace studio {

// One decoded unit: per frame of the unit, the input the runner merges (the unit's tokens as
// items[0], that frame as the image), so showing a frame copies nothing on the GUI thread.
struct DecodedUnit {
    qint64 begin = 0, frames = 0;
    std::vector<std::shared_ptr<const qmpp::LoadedInput>> inputs; // [frames]
    const qmpp::TokenSet& tokens() const { return inputs.front()->items.front(); }
};

class VideoSource : public QObject {
    Q_OBJECT
  public:
    static constexpr int kAhead = 6; // units decoded ahead of the one shown

    explicit VideoSource(JobOwner* jobs, QObject* parent = nullptr);
    ~VideoSource() override;

    // Opens the video (InputError with the file's name when it cannot be decoded).
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
    void schedule(); // decode jobs for the missing units from the target on

    JobOwner* m_jobs;
    qmpp::VideoInfo m_info;
    qmpp::VideoOptions m_options;
    std::shared_ptr<qmpp::VideoReader> m_reader; // used by the video lane's jobs, one at a time
    std::map<qint64, std::shared_ptr<const DecodedUnit>> m_cache; // null: does not decode
    std::map<qint64, quint64> m_pending;                          // unit -> its decode job
    qint64 m_target = 0;
};

} // namespace studio
