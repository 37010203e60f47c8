// Built without OpenCV (e.g. a GPU server): video input is refused with a way forward.
#include "qmpp/error.h"
#include "qmpp/video.h"

namespace qmpp {

namespace {
[[noreturn]] void refuse(const std::string& path) {
    throw InputError(path +
                     ": video input needs OpenCV, which this build lacks; run `qmpp tokenize "
                     "VIDEO --frames A:B --out frames.npy` on a machine with OpenCV and "
                     "pass frames.npy here");
}
} // namespace

bool haveVideoSupport() {
    return false;
}

struct VideoReader::Impl {};

VideoReader::VideoReader(const std::string& path, const VideoOptions&) {
    refuse(path);
}
VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const {
    refuse({});
}
i64 VideoReader::position() const {
    return 0;
}
void VideoReader::seek(i64) {
    refuse({});
}
bool VideoReader::read(ImageInput&) {
    refuse({});
}

VideoInfo probeVideo(const std::string& path) {
    refuse(path);
}

} // namespace qmpp
