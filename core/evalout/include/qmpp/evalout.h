// What `qmpp eval` writes, for the CLI and the studio's reports alike (qmpp_evalout: model,
// tools): a ViT evaluation's files, its overlays, and a sweep's files.
#pragma once

#include "qmpp/evaluate.h"
#include "qmpp/overlay.h"

#include <string>
#include <vector>

namespace qmpp {

// The model's input [C, H, W] (normalized) back to 8-bit RGB (grey for one channel): what the
// overlays are drawn on, here and on the studio's Model page.
RgbImage modelInputPicture(const VitConfig& c, const float* pixels);

// eval.json, measures.csv, predictions.csv, logits_plain.npy and logits_merged.npy into `dir`.
void writeEvalFiles(const std::string& dir, const EvalRun& run, const VitConfig& c,
                    const EvalItems& items, const HookParams& hp, const std::string& modelPath);

// overlays.json and overlays/*.png in `dir`: for the first `count` items, the merged model's
// (seed 0) sources as ToMe draws them, QuickMerge++'s saliency, the class token's attention and
// attention rollout (mean of heads, discard 0.9) at the last block, with the Spearman agreement
// of the saliency per block. PNGs need OpenCV; without it, overlays.json alone. Returns the
// files written, relative to `dir`.
std::vector<std::string> writeEvalOverlays(const std::string& dir, const VitModel& m,
                                           const EvalItems& items, const HookParams& hp, i64 count);

// One (method, setting) of a sweep, over its seeds.
struct SweepPoint {
    std::string method;
    double setting = 0; // r per block, or the budget
    EvalRun run;
};
// sweep.csv, sweep.json and (with OpenCV) sweep.png into `dir`.
void writeSweepFiles(const std::string& dir, const std::vector<SweepPoint>& pts, bool budget,
                     bool labelled);

} // namespace qmpp
