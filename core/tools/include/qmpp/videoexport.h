// The merge of a video's frame range: merge stability between consecutive units, the report, and
// the export into an output folder (arrays, overlay.avi, report.json).
#pragma once

#include "qmpp/engine.h"
#include "qmpp/progress.h"
#include "qmpp/video.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qmpp {

// Flicker between two label vectors over the same tokens: groups of `a` matched one-to-one to
// groups of `b` by largest overlap first (dropped tokens, label -1, form a group of their own);
// the fraction of tokens whose matched group changed. 0 = identical grouping, up to 1.
double groupFlicker(const std::vector<i64>& a, const std::vector<i64>& b);

// The merge of a frame range, as written by exportVideo.
struct VideoRun {
    VideoInfo info;
    VideoOptions options;
    FrameRange range; // resolved
    MergeParams params;
    std::vector<i64> unitBegin;       // first frame of each unit
    std::vector<i64> unitFrames;      // real (unpadded) frames of each unit
    std::vector<MergeResult> results; // one per unit
    std::vector<double> flicker;      // between consecutive units [U - 1]
    std::vector<std::string> files;
};
// report.json of a video run, and its "summary" (units, frames, time per frame, flicker).
nlohmann::ordered_json videoReport(const VideoRun& run);
nlohmann::ordered_json videoSummary(const VideoRun& run);

// Merges every unit of `range` and writes into `dir` by the output-folder protocol: merged.npy
// [U, K, D], labels/saliency/mask/mass [U, N], result.safetensors (all of them, frame axis
// first), overlay.avi (each frame's groups beside its saliency) and report.json. Cancelling
// (Cancelled) or any failure leaves `dir` as it was.
VideoRun exportVideo(const std::string& path, const VideoOptions& o, FrameRange range,
                     const MergeParams& p, const std::string& dir, bool force,
                     const Progress& progress = {});

} // namespace qmpp
