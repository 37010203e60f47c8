// Video runs without the decoder: frame ranges, units of frames, merge stability, report.json.
#include "qmpp/videoexport.h"

#include "qmpp/error.h"
#include "qmpp/report.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

namespace qmpp {

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
    rep["parameters"] = paramsJson(run.params, r0.k, r0.n);
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
