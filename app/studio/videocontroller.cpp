#include "videocontroller.h"

#include "exports.h"
#include "imagecanvas.h"
#include "overlaypanel.h"
#include "paramspanel.h"
#include "timelinepanel.h"

#include "qmpp/videoexport.h"

#include <QDockWidget>
#include <QFileInfo>
#include <QInputDialog>
#include <QMessageBox>
#include <QTimer>

#include <algorithm>

namespace studio {

VideoController::VideoController(const Parts& parts) : QObject(parts.window), m_p(parts) {
    connect(m_p.timeline, &TimelinePanel::frameRequested, this, &VideoController::showFrame);
    connect(m_p.timeline, &TimelinePanel::playToggled, this, &VideoController::setPlaying);
    connect(m_p.timeline, &TimelinePanel::tubeletChanged, this, [this](int t) {
        if (m_video) open(m_path, false, t, m_p.timeline->frame());
    });
}

VideoController::~VideoController() = default;

bool VideoController::open(const QString& path, bool quiet, int tubelet, qint64 frame) {
    setPlaying(false);
    qmpp::VideoOptions o;
    o.patch = m_p.params->patch();
    o.tubelet = tubelet;
    auto source = std::make_unique<VideoSource>(m_p.jobs);
    try {
        source->open(path, o);
    } catch (const std::exception& e) {
        emit failed(
            tr("Open failed"),
            tr("Cannot open %1:\n%2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what())),
            quiet);
        return false;
    }
    connect(source.get(), &VideoSource::unitReady, this, [this](qint64 begin) {
        if (m_video && m_wantFrame >= 0 && m_video->unitBegin(m_wantFrame) == begin)
            showFrame(m_wantFrame);
    });
    connect(source.get(), &VideoSource::failed, this, [this](const QString& msg) {
        setPlaying(false);
        emit failed(tr("Video"), msg, true);
    });
    m_video = std::move(source);
    m_path = path;
    m_prevUnit = -1;
    m_prevLabels.clear();
    m_haveResult = false;
    const qmpp::VideoInfo& info = m_video->info();
    m_p.timeline->setVideo(info.frames, info.fps, tubelet);
    m_p.dock->show();
    emit opened(path);
    m_wantFrame = -1;
    showFrame(std::min<qint64>(frame, info.frames - 1));
    return true;
}

void VideoController::close() {
    setPlaying(false);
    m_video.reset();
    m_p.dock->hide();
}

void VideoController::showFrame(qint64 frame) {
    if (!m_video) return;
    frame = std::clamp<qint64>(frame, 0, m_video->info().frames - 1);
    m_wantFrame = frame;
    m_p.timeline->setFrame(frame);
    const auto unit = m_video->unitFor(frame);
    if (!unit) return; // decoding; unitReady brings us back
    const auto& loaded = unit->inputs[std::size_t(frame - unit->begin)];
    const qmpp::TokenSet& tokens = unit->tokens();
    StudioInput in;
    in.path = m_path;
    in.loaded = loaded;
    in.frame = frame;
    in.unitBegin = unit->begin;
    in.unitFrames = unit->frames;
    in.tubelet = m_video->options().tubelet;
    in.tau = int((frame - unit->begin) % in.tubelet);
    MergeRunner* runner = m_p.runner;
    const bool sameShape = runner->input().isVideo() && runner->input().tokens().n == tokens.n;
    runner->setInput(in);
    if (sameShape) {
        m_p.canvas->setFrame(in);
    } else {
        m_p.canvas->setInput(in);
        m_p.params->setTokenCount(tokens.n);
    }
    const qmpp::VideoInfo& info = m_video->info();
    const auto& im = *loaded->image;
    m_p.overlays->setInputDescription(
        tr("<b>%1</b><br>video %2×%3, %4 frames at %5 fps (%6)<br>frame %7 tokenized at "
           "%8×%9<br>%10×%11 %12 of %13 px, "
           "N = %14, D = %15")
            .arg(QFileInfo(m_path).fileName().toHtmlEscaped())
            .arg(info.width)
            .arg(info.height)
            .arg(info.frames)
            .arg(info.fps, 0, 'f', 2)
            .arg(QString::fromStdString(info.decoder))
            .arg(frame)
            .arg(im.width)
            .arg(im.height)
            .arg(tokens.gridCols)
            .arg(tokens.gridRows)
            .arg(in.tubelet > 1 ? tr("tubelets of %1 frames").arg(in.tubelet) : tr("patches"))
            .arg(im.patch)
            .arg(tokens.n)
            .arg(tokens.d));
    m_frameClock.restart();
    runner->requestNow(m_p.params->params());
}

void VideoController::setPlaying(bool playing) {
    m_p.timeline->setPlaying(playing && m_video);
    if (playing && m_video && m_haveResult && !m_p.runner->busy() && !m_nextScheduled) {
        if (m_p.timeline->frame() + 1 >= m_video->info().frames)
            showFrame(0); // play again from the start
        else
            showFrame(m_p.timeline->frame() + 1);
    }
}

void VideoController::onResult(const StudioInput& in, const qmpp::MergeResult& r) {
    if (!m_video) return;
    m_haveResult = true;
    m_p.timeline->addTiming(in.frame,
                            r.timings.back().ms / double(std::max<qint64>(1, in.unitFrames)));
    const qint64 w = qmpp::windowOf(m_video->options());
    if (in.unitBegin != m_prevUnit) {
        if (m_prevUnit >= 0 && m_prevUnit == in.unitBegin - w &&
            m_prevLabels.size() == r.labels.size())
            m_p.timeline->addFlicker(in.unitBegin, qmpp::groupFlicker(m_prevLabels, r.labels));
        m_prevUnit = in.unitBegin;
        m_prevLabels = r.labels;
    }
    if (!m_p.timeline->playing() || m_nextScheduled) return;
    const qint64 next = in.frame + 1;
    if (next >= m_video->info().frames) {
        setPlaying(false);
        return;
    }
    // at the video's frame rate when the merge keeps up, as fast as it goes otherwise
    const double fps = m_video->info().fps > 0 ? m_video->info().fps : 25.0;
    const int wait = std::max(0, int(1000.0 / fps - double(m_frameClock.elapsed())));
    m_nextScheduled = true;
    QTimer::singleShot(wait, this, [this, next] {
        m_nextScheduled = false;
        if (m_video && m_p.timeline->playing()) showFrame(next);
    });
}

quint64 VideoController::exportFrames(const QString& dir, const QString& rangeText, bool force) {
    if (!m_video) {
        m_error = tr("Export frames: open a video first");
        emit failed(tr("Export failed"), m_error, true);
        return 0;
    }
    qmpp::FrameRange range;
    try {
        range = qmpp::resolveRange(m_video->info(), qmpp::parseFrameRange(rangeText.toStdString()));
    } catch (const std::exception& e) {
        m_error = tr("Export failed: %1").arg(QString::fromUtf8(e.what()));
        emit failed(tr("Export failed"), m_error, true);
        return 0;
    }
    setPlaying(false);
    const std::string path = m_path.toStdString(), out = dir.toStdString();
    const qmpp::VideoOptions o = m_video->options();
    qmpp::MergeParams p = m_p.params->params();
    p.progress = nullptr;
    return m_p.jobs->start(
        QStringLiteral("export"),
        tr("Exporting frames %1 of %2").arg(rangeText, QFileInfo(m_path).fileName()),
        [this, path, o, range, p, out, force, dir, rangeText](JobContext& c) -> JobOwner::Then {
            qmpp::exportVideo(path, o, range, p, out, force, c.reporter());
            return [this, dir, rangeText] {
                emit message(tr("Exported frames %1 to %2").arg(rangeText, dir));
            };
        },
        JobOwner::Mode::Queue);
}

void VideoController::exportFramesDialog() {
    if (!m_video) return;
    bool ok = false;
    const QString range = QInputDialog::getText(
        m_p.window, tr("Export video frames"), tr("Frames A:B (half-open: A … B−1):"),
        QLineEdit::Normal, QStringLiteral("0:%1").arg(m_video->info().frames), &ok);
    if (!ok || range.isEmpty()) return;
    QString dir;
    bool force = false;
    if (!chooseExportFolder(m_p.window, tr("Export frames into"), dir, force)) return;
    if (!exportFrames(dir, range, force))
        QMessageBox::warning(m_p.window, tr("Export failed"), m_error);
}

} // namespace studio
