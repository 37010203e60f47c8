// Video runs without the decoder: frame ranges, units of frames, merge stability, report.json.
#include "qmpp/video.h"

#include "qmpp/error.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

namespace qmpp {

namespace {

i64 parseFrameIndex(const std::string& s, const std::string& whole) {
    if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), ::isdigit))
        throw UsageError("--frames " + whole +
                         ": expected A:B with frame indices A < B (half-open)");
    return std::stoll(s);
}

} // namespace

FrameRange parseFrameRange(const std::string& s) {
    const auto colon = s.find(':');
    if (colon == std::string::npos || s.find(':', colon + 1) != std::string::npos)
        throw UsageError("--frames " + s +
                         ": expected A:B (half-open: frames A ... B-1), A: or :B");
    FrameRange r;
    const std::string a = s.substr(0, colon), b = s.substr(colon + 1);
    if (!a.empty()) r.begin = parseFrameIndex(a, s);
    if (!b.empty()) r.end = parseFrameIndex(b, s);
    if (r.end >= 0 && r.end <= r.begin)
        throw UsageError("--frames " + s + ": the range is empty (B must exceed A; B is excluded)");
    return r;
}

std::string toString(const FrameRange& r) {
    return std::to_string(r.begin) + ":" + (r.end >= 0 ? std::to_string(r.end) : std::string());
}

void validate(const VideoOptions& o) {
    if (o.patch < 1 || o.patch > 256) throw UsageError("patch size must lie in 1..256");
    if (o.width < 0 || o.width > 8192)
        throw UsageError("--width must lie in 0..8192 (0: the video's own)");
    if (o.tubelet < 1 || o.tubelet > 64) throw UsageError("--tubelet T must lie in 1..64");
    if (o.window < 0 || o.window > 1024 || (o.window > 0 && o.window % o.tubelet != 0))
        throw UsageError("--window must be a multiple of the tubelet length T = " +
                         std::to_string(o.tubelet) + " (at most 1024 frames)");
    if (o.projection && o.tubelet != 1)
        throw UsageError("--projection applies to single-frame tokens (T = 1), not tubelets");
}

FrameRange resolveRange(const VideoInfo& info, FrameRange range) {
    if (range.begin >= info.frames)
        throw InputError(info.path + ": frame " + std::to_string(range.begin) +
                         " is past the end (the video has " + std::to_string(info.frames) +
                         " frames)");
    FrameRange r = range;
    if (r.end < 0 || r.end > info.frames) r.end = info.frames;
    return r;
}

void forEachUnit(VideoReader& reader, const VideoOptions& o, FrameRange range,
                 const std::function<bool(VideoUnit&)>& onUnit) {
    validate(o);
    const FrameRange r = resolveRange(reader.info(), range);
    const int window = windowOf(o);
    reader.seek(r.begin);
    for (i64 begin = r.begin; begin < r.end; begin += window) {
        VideoUnit u;
        u.begin = begin;
        const i64 want = std::min<i64>(window, r.end - begin);
        for (i64 f = 0; f < want; ++f) {
            ImageInput img;
            if (!reader.read(img)) break; // the container promised more frames than it holds
            u.images.push_back(std::move(img));
        }
        if (u.images.empty()) break;
        u.frames = static_cast<i64>(u.images.size());
        while (static_cast<i64>(u.images.size()) < window) { // pad: repeat the last frame
            u.images.push_back(u.images.back());
            ++u.padded;
        }
        std::vector<const ImageInput*> ptrs;
        for (const auto& im : u.images)
            ptrs.push_back(&im);
        u.tokens = tokenizeFrames(ptrs, o.tubelet, o.projection);
        if (!onUnit(u)) return;
        if (u.frames < want) break;
    }
}

} // namespace qmpp
