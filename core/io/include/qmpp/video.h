// Video input: decoding with OpenCV videoio, half-open frame ranges, per-frame or tubelet tokens.
// Builds without OpenCV refuse video with a way forward (`qmpp tokenize` elsewhere, then the
// .npy here). The merge of a frame range and its export are tools (qmpp/videoexport.h).
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/types.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qmpp {

// Half-open frame range A:B = A ... B-1; end < 0 runs to the last frame.
struct FrameRange {
    i64 begin = 0, end = -1;
};
// "A:B", "A:", ":B" or ":"; UsageError when malformed or empty.
FrameRange parseFrameRange(const std::string& s);
std::string toString(const FrameRange& r);

struct VideoInfo {
    std::string path;
    i64 frames = 0; // frames the container reports (counted by decoding when it reports none)
    double fps = 0; // 0 when the container does not say
    int width = 0, height = 0;
    std::string decoder; // OpenCV's backend ("FFMPEG"...)
};

struct VideoOptions {
    int patch = 16;
    int width = 0;   // frames resized to this width first (aspect kept, sides snapped to P); 0: own
    int tubelet = 1; // T frames per token (spatio-temporal tubelets of T x P x P)
    int window = 0;  // frames per merge, a multiple of T (0: T); groups may span its frames
    const Projection* projection = nullptr; // ViT patch embedding, T = 1 only
};
void validate(const VideoOptions& o); // UsageError for impossible combinations
inline int windowOf(const VideoOptions& o) {
    return o.window > 0 ? o.window : o.tubelet;
}

bool haveVideoSupport(); // built with OpenCV videoio

// Decodes one video in order. Every failure is an InputError naming the file.
class VideoReader {
  public:
    VideoReader(const std::string& path, const VideoOptions& o); // missing, unreadable, no frames
    ~VideoReader();
    VideoReader(const VideoReader&) = delete;
    VideoReader& operator=(const VideoReader&) = delete;

    const VideoInfo& info() const;
    // The next read() returns frame `index`; InputError when it lies outside the video.
    void seek(i64 index);
    i64 position() const; // index of the frame the next read() returns
    // The next frame as the tokenizer sees it (resized, RGB); false past the last frame.
    bool read(ImageInput& frame);

  private:
    struct Impl;
    std::unique_ptr<Impl> m;
};

// Metadata without keeping the decoder open.
VideoInfo probeVideo(const std::string& path);

// One merge unit of a video: `window` frames starting at `begin` (the last unit of a range is
// padded by repeating its last frame; `padded` counts the copies), and their tokens.
struct VideoUnit {
    i64 begin = 0, frames = 0, padded = 0;
    std::vector<ImageInput> images; // the unit's frames (padding included)
    TokenSet tokens;                // [window / T * rows * cols, 3 * T * P * P]
};
// Reads `range` of `reader` unit by unit; `onUnit` returns false to stop early.
void forEachUnit(VideoReader& reader, const VideoOptions& o, FrameRange range,
                 const std::function<bool(VideoUnit&)>& onUnit);
// The range clamped to the video; InputError when it selects no frame.
FrameRange resolveRange(const VideoInfo& info, FrameRange range);

} // namespace qmpp
