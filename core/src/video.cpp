// Video runs without the decoder: frame ranges, units of frames, merge stability, report.json.
#include "qmpp/video.h"

#include "qmpp/error.h"
#include "qmpp/report.h"

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

double groupFlicker(const std::vector<i64>& a, const std::vector<i64>& b) {
    if (a.size() != b.size()) throw UsageError("groupFlicker: label vectors of different lengths");
    if (a.empty()) return 0.0;
    // overlap counts of (group in a, group in b); -1 is a group like any other
    std::map<std::pair<i64, i64>, i64> overlap;
    for (std::size_t i = 0; i < a.size(); ++i)
        ++overlap[{a[i], b[i]}];
    std::vector<std::tuple<i64, i64, i64>> edges; // (-count, ga, gb): largest first, then by ids
    edges.reserve(overlap.size());
    for (const auto& [key, c] : overlap)
        edges.emplace_back(-c, key.first, key.second);
    std::sort(edges.begin(), edges.end());
    std::map<i64, bool> usedA, usedB;
    i64 kept = 0;
    for (const auto& [negCount, ga, gb] : edges) {
        if (usedA[ga] || usedB[gb]) continue;
        usedA[ga] = usedB[gb] = true;
        kept += -negCount;
    }
    return 1.0 - double(kept) / double(a.size());
}

nlohmann::ordered_json videoSummary(const VideoRun& run) {
    using json = nlohmann::ordered_json;
    std::vector<double> ms;
    i64 frames = 0;
    for (std::size_t u = 0; u < run.results.size(); ++u) {
        ms.push_back(run.results[u].timings.back().ms);
        frames += run.unitFrames[u];
    }
    const double total = std::accumulate(ms.begin(), ms.end(), 0.0);
    std::sort(ms.begin(), ms.end());
    json sum;
    sum["units"] = run.results.size();
    sum["frames"] = frames;
    sum["pipeline_ms_median"] = ms[ms.size() / 2];
    sum["pipeline_ms_max"] = ms.back();
    sum["pipeline_ms_per_frame"] = total / double(std::max<i64>(1, frames));
    sum["flicker_mean"] = run.flicker.empty()
                              ? 0.0
                              : std::accumulate(run.flicker.begin(), run.flicker.end(), 0.0) /
                                    double(run.flicker.size());
    sum["flicker_max"] =
        run.flicker.empty() ? 0.0 : *std::max_element(run.flicker.begin(), run.flicker.end());
    sum["flicker_definition"] =
        "fraction of tokens whose group changed between consecutive units, groups matched "
        "one-to-one by largest overlap";
    return sum;
}

nlohmann::ordered_json videoReport(const VideoRun& run) {
    using json = nlohmann::ordered_json;
    json rep;
    rep["tool"] = "qmpp";
    rep["version"] = kVersion;
    const MergeResult& r0 = run.results.front();
    auto& jin = rep["input"];
    jin["path"] = run.info.path;
    jin["kind"] = "video";
    jin["frames_in_video"] = run.info.frames;
    jin["fps"] = run.info.fps;
    jin["video_size"] = {run.info.width, run.info.height};
    jin["decoder"] = run.info.decoder;
    jin["frames"] = toString(run.range);
    jin["patch"] = run.options.patch;
    jin["tubelet"] = run.options.tubelet;
    jin["window"] = windowOf(run.options);
    jin["resize_width"] = run.options.width;
    jin["n"] = r0.n;
    jin["d"] = r0.d;
    rep["parameters"] = paramsJson(run.params, r0.k);
    const json first = resultJson(r0);
    for (const char* key :
         {"method", "backend", "device", "precision", "saliency_source", "ar_heads"})
        rep[key] = first[key];

    rep["summary"] = videoSummary(run);
    rep["units"] = json::array();
    for (std::size_t u = 0; u < run.results.size(); ++u) {
        const MergeResult& r = run.results[u];
        json j;
        j["frames"] = {run.unitBegin[u], run.unitBegin[u] + run.unitFrames[u]};
        j["k"] = r.k;
        j["pipeline_ms"] = r.timings.back().ms;
        j["flicker_from_previous"] = u == 0 ? json(nullptr) : json(run.flicker[u - 1]);
        j["metrics"] = metricsJson(r.metrics);
        j["metrics"].erase("ar_error_forward");
        j["metrics"].erase("ar_error_backward");
        j["losses"] = lossesJson(r.losses);
        rep["units"].push_back(std::move(j));
    }
    rep["outputs"] = run.files;
    return rep;
}

} // namespace qmpp
