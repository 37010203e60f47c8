// Video decoding (OpenCV videoio) and the export of a frame range with its overlay video.
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/video.h"

#include "cvio.h"

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace qmpp {

namespace {

// Frames larger than this are refused: a corrupt header must not turn into gigabytes of tokens.
constexpr double kMaxFramePixels = 40e6;

// Decoder chatter ("moov atom not found"...) stays off the terminal: our message says it.
void quietDecoders() {
    static const bool once = [] {
        setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0); // AV_LOG_QUIET
        cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
        return true;
    }();
    (void)once;
}

} // namespace

bool haveVideoSupport() {
    return true;
}

struct VideoReader::Impl {
    cv::VideoCapture cap;
    VideoInfo info;
    VideoOptions opt;
    i64 next = 0;
};

VideoReader::VideoReader(const std::string& path, const VideoOptions& o)
    : m(std::make_unique<Impl>()) {
    validate(o);
    requireFile(path);
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) == 0 && !ec)
        throw InputError(path + ": the file is empty");
    m->opt = o;
    m->info.path = path;
    quietDecoders();
    try {
        const cvio::QuietStderr quiet; // the codecs' own complaints; our message says it
        // FFmpeg only: it reads mp4/avi/mkv, and the GStreamer fallback of CAP_ANY leaks and
        // prints on files FFmpeg has already refused
        if (!m->cap.open(path, cv::CAP_FFMPEG))
            throw InputError(path + ": not a readable video (OpenCV could not open it; mp4, avi "
                                    "and mkv with the codecs of Debian's FFmpeg are supported)");
        m->info.decoder = m->cap.getBackendName();
        m->info.fps = m->cap.get(cv::CAP_PROP_FPS);
        if (!std::isfinite(m->info.fps) || m->info.fps < 0 || m->info.fps > 10000) m->info.fps = 0;
        const double count = m->cap.get(cv::CAP_PROP_FRAME_COUNT);
        m->info.frames = std::isfinite(count) && count > 0 && count < 1e9 ? i64(count) : 0;
        // The first frame proves the stream decodes, and gives the true size.
        cv::Mat first;
        if (!m->cap.read(first) || first.empty())
            throw InputError(path + ": the video has no decodable frames (empty or corrupt)");
        // the limit applies to the frames as they are tokenized, after --width scales them
        const double scale = o.width > 0 ? double(o.width) / first.cols : 1.0;
        const double outW = first.cols * scale, outH = first.rows * scale;
        if (outW * outH > kMaxFramePixels)
            throw InputError(path + ": frames of " + std::to_string(first.cols) + " x " +
                             std::to_string(first.rows) + " pixels" +
                             (o.width > 0 ? " scaled to --width " + std::to_string(o.width) +
                                                " are " + std::to_string(i64(outW)) + " x " +
                                                std::to_string(i64(outH))
                                          : std::string()) +
                             "; at most 40 megapixels are tokenized");
        m->info.width = first.cols;
        m->info.height = first.rows;
        if (m->info.frames == 0) { // no count in the container: decode to count
            i64 n = 1;
            while (m->cap.grab())
                ++n;
            m->info.frames = n;
        }
        // back to frame 0 by reopening: a seek to 0 does not rewind every container (a one-frame
        // MJPG AVI then decoded nothing more, and tokenize wrote an empty array)
        m->cap.release();
        if (!m->cap.open(path, cv::CAP_FFMPEG))
            throw InputError(path + ": the video could not be reopened after probing it");
        m->next = 0;
    } catch (const cv::Exception& e) {
        throw InputError(path + ": cannot decode the video (" + e.what() + ")");
    }
}

VideoReader::~VideoReader() = default;

const VideoInfo& VideoReader::info() const {
    return m->info;
}
i64 VideoReader::position() const {
    return m->next;
}

void VideoReader::seek(i64 index) {
    if (index < 0 || index >= m->info.frames)
        throw InputError(m->info.path + ": frame " + std::to_string(index) +
                         " is outside the video (0.." + std::to_string(m->info.frames - 1) + ")");
    if (index == m->next) return;
    try {
        const cvio::QuietStderr quiet;
        // Container seeks land on key frames in some formats; reopen and skip for exactness when
        // seeking backwards, grab forward otherwise.
        if (index < m->next) {
            m->cap.set(cv::CAP_PROP_POS_FRAMES, double(index));
            const double at = m->cap.get(cv::CAP_PROP_POS_FRAMES);
            if (!(std::isfinite(at) && i64(at) == index)) {
                m->cap.open(m->info.path, cv::CAP_FFMPEG);
                for (i64 i = 0; i < index && m->cap.grab(); ++i) {
                }
            }
        } else {
            for (i64 i = m->next; i < index && m->cap.grab(); ++i) {
            }
        }
    } catch (const cv::Exception& e) {
        throw InputError(m->info.path + ": cannot seek to frame " + std::to_string(index) + " (" +
                         e.what() + ")");
    }
    m->next = index;
}

bool VideoReader::read(ImageInput& frame) {
    if (m->next >= m->info.frames) return false;
    cv::Mat bgr;
    try {
        const cvio::QuietStderr quiet;
        if (!m->cap.read(bgr) || bgr.empty()) return false;
    } catch (const cv::Exception& e) {
        throw InputError(m->info.path + ": frame " + std::to_string(m->next) +
                         " does not decode (" + e.what() + ")");
    }
    if (bgr.cols != m->info.width || bgr.rows != m->info.height)
        throw InputError(m->info.path + ": frame " + std::to_string(m->next) + " changes size to " +
                         std::to_string(bgr.cols) + " x " + std::to_string(bgr.rows));
    frame = cvio::fromBgr(bgr, m->opt.patch, m->opt.width, m->info.path);
    frame.projected = m->opt.projection != nullptr;
    ++m->next;
    return true;
}

VideoInfo probeVideo(const std::string& path) {
    return VideoReader(path, VideoOptions{}).info();
}

} // namespace qmpp
