// evalout.h: the files of `qmpp eval`, its overlays and its sweeps.
#include "qmpp/evalout.h"

#include "qmpp/explain.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/overlay.h"
#include "qmpp/plotting.h"
#include "qmpp/render.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace qmpp {

namespace {

void writeText(const std::string& path, const std::string& text) {
    writeFileBytes(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

nlohmann::ordered_json numbers(const std::vector<double>& v) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (double x : v)
        a.push_back(std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json());
    return a;
}

CurvePoint pointOf(const SweepPoint& p, double x, EvalMeasure m) {
    const SeedSummary v = overSeeds(p.run, m);
    CurvePoint c;
    c.x = x;
    c.interval = true;
    c.y = v.value;
    c.lo = v.lo;
    c.hi = v.hi;
    return c;
}

} // namespace

RgbImage modelInputPicture(const VitConfig& c, const float* pixels) {
    const int s = int(c.imageSize);
    RgbImage img(s, s);
    const i64 plane = c.imageSize * c.imageSize;
    for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x) {
            std::uint8_t* q = img.at(x, y);
            for (int ch = 0; ch < 3; ++ch) {
                const i64 k = c.channels >= 3 ? ch : 0;
                const double v = pixels[k * plane + i64(y) * s + x] * c.std[std::size_t(k)] +
                                 c.mean[std::size_t(k)];
                q[ch] = std::uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
            }
        }
    return img;
}

void writeEvalFiles(const std::string& dir, const EvalRun& run, const VitConfig& c,
                    const EvalItems& items, const HookParams& hp, const std::string& modelPath) {
    writeNpy(dir + "/logits_plain.npy",
             NdArray::fromFloat(run.plainLogits, {items.count, c.classes}));
    std::vector<float> merged;
    for (const auto& l : run.mergedLogits)
        merged.insert(merged.end(), l.begin(), l.end());
    writeNpy(dir + "/logits_merged.npy",
             NdArray::fromFloat(merged, {i64(run.mergedLogits.size()), items.count, c.classes}));
    writeText(dir + "/eval.json", evalJson(run, c, items, hp, modelPath));
    writeText(dir + "/measures.csv", measuresCsv(run));
    writeText(dir + "/predictions.csv", predictionsCsv(run, c, items));
}

std::vector<std::string> writeEvalOverlays(const std::string& dir, const VitModel& m,
                                           const EvalItems& items, const HookParams& hp,
                                           i64 count) {
    const VitConfig& c = config(m);
    const i64 n = std::min(count, items.count), each = c.channels * c.imageSize * c.imageSize;
    const bool pictures = haveImageSupport();
    const int scale = std::max(1, int(224 / std::max<i64>(c.imageSize, 1)));
    const int last = int(c.depth - 1);
    std::vector<std::string> written;
    if (pictures && n > 0) std::filesystem::create_directories(dir + "/overlays");
    nlohmann::ordered_json j;
    j["tool"] = "qmpp eval --overlays";
    j["block"] = last;
    j["rollout"] = {{"heads", "mean"}, {"discard", 0.9}};
    j["method"] = toString(hp.method);
    j["schedule"] = hp.schedule.describe();
    j["seed"] = hp.seed;
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (i64 i = 0; i < n; ++i) {
        const float* px = items.pixels.data() + i * each;
        ForwardTrace tr;
        ForwardOptions opt;
        opt.trace = &tr;
        const ForwardResult r = vitForward(m, px, hp, i, opt);
        const Rollout ro = rollout(tr, c.heads, c.patches, HeadFusion::Mean, 0.9);
        const SaliencyAgreement ag = saliencyAgreement(tr, c.heads, ro);
        const BlockTrace& b = tr.blocks.back();
        nlohmann::ordered_json e;
        e["item"] = i;
        e["name"] = items.names[std::size_t(i)];
        e["label"] = items.labels[std::size_t(i)];
        const i64 top = i64(std::max_element(r.logits.begin(), r.logits.end()) - r.logits.begin());
        const i64 label = items.labels[std::size_t(i)];
        e["merged_class"] = top;
        e["label_name"] = label >= 0 ? c.classNames[std::size_t(label)] : std::string("unknown");
        e["merged_name"] = c.classNames[std::size_t(top)];
        e["tokens_at_block"] = b.tokens;
        e["spearman_class_attention"] = numbers(ag.withClassAttention);
        e["spearman_rollout"] = numbers(ag.withRollout);
        if (pictures) {
            const RgbImage in = modelInputPicture(c, px);
            const int grid = int(c.grid);
            const std::pair<const char*, RgbImage> pics[] = {
                {"sources", tokenSourcesImage(in, b.owner, grid, scale)},
                {"saliency", patchHeatImage(in, toPatches(b, blockSaliency(b)), grid, scale, 0.6)},
                {"class-attention",
                 patchHeatImage(in, toPatches(b, tokenAttention(b, c.heads, 0)), grid, scale, 0.6)},
                {"rollout", patchHeatImage(in, ro.patches.back(), grid, scale, 0.6)}};
            nlohmann::ordered_json files;
            for (const auto& [kind, pic] : pics) {
                const std::string name = "overlays/item" + std::to_string(i) + "_" + kind + ".png";
                writeRgbPng(pic, dir + "/" + name);
                written.push_back(name);
                files[kind] = name;
            }
            e["files"] = files;
        }
        list.push_back(e);
    }
    j["items"] = list;
    writeText(dir + "/overlays.json", j.dump(2) + "\n");
    written.push_back("overlays.json");
    return written;
}

void writeSweepFiles(const std::string& dir, const std::vector<SweepPoint>& pts, bool budget,
                     bool labelled) {
    auto path = [&](const char* name) { return dir + "/" + name; };
    std::ostringstream csv;
    csv << std::setprecision(9);
    csv << "method," << (budget ? "budget" : "r") << ",seed,agreement,agreement_lo,agreement_hi,"
        << "kl_mean,kl_lo,kl_hi,max_logit_change,accuracy_plain,accuracy_merged,flops_ratio,"
           "ms_per_image\n";
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const SweepPoint& p : pts)
        for (std::size_t s = 0; s < p.run.measures.size(); ++s) {
            const EvalMeasures& m = p.run.measures[s];
            const double ratio = p.run.flopsMerged / p.run.flopsPlain;
            csv << p.method << "," << p.setting << "," << p.run.seeds[s] << "," << m.agreement.value
                << "," << m.agreement.lo << "," << m.agreement.hi << "," << m.klMean << ","
                << m.klLo << "," << m.klHi << "," << m.maxLogitChange << ",";
            if (labelled)
                csv << m.accuracyPlain.value << "," << m.accuracyMerged.value;
            else
                csv << ",";
            csv << "," << ratio << "," << p.run.msMerged << "\n";
            rows.push_back(
                {{"method", p.method},
                 {budget ? "budget" : "r", p.setting},
                 {"seed", p.run.seeds[s]},
                 {"agreement", m.agreement.value},
                 {"agreement_ci95", {m.agreement.lo, m.agreement.hi}},
                 {"kl", m.klMean},
                 {"kl_ci95", {m.klLo, m.klHi}},
                 {"max_logit_change", m.maxLogitChange},
                 {"accuracy_merged", labelled ? nlohmann::ordered_json(m.accuracyMerged.value)
                                              : nlohmann::ordered_json()},
                 {"flops_ratio", ratio},
                 {"ms_per_image", p.run.msMerged},
                 {"tokens_left", p.run.blocks.back().tokensOut}});
        }
    const std::string c = csv.str();
    writeText(path("sweep.csv"), c);
    nlohmann::ordered_json j;
    j["tool"] = "qmpp eval --sweep";
    j["x"] = budget ? "budget" : "r";
    j["accuracy_plain"] = labelled && !pts.empty()
                              ? nlohmann::ordered_json(pts[0].run.measures[0].accuracyPlain.value)
                              : nlohmann::ordered_json();
    j["rows"] = rows;
    const std::string t = j.dump(2) + "\n";
    writeText(path("sweep.json"), t);
    if (!haveImageSupport()) return;
    std::vector<CurvePanel> panels(labelled ? 4 : 3);
    panels[0].title = "top-1 agreement";
    panels[1].title = "KL(plain || merged)";
    panels[2].title = "top-1 agreement";
    panels[0].xLabel = panels[1].xLabel = "FLOPs / plain FLOPs";
    panels[2].xLabel = "ms per image (CPU)";
    if (labelled) panels[3].title = "accuracy", panels[3].xLabel = "FLOPs / plain FLOPs";
    for (const SweepPoint& p : pts) {
        const double ratio = p.run.flopsMerged / p.run.flopsPlain;
        auto add = [&](CurvePanel& pan, const CurvePoint& cp) {
            auto it = std::find_if(pan.series.begin(), pan.series.end(),
                                   [&](const CurveSeries& s) { return s.method == p.method; });
            if (it == pan.series.end()) {
                pan.series.push_back({p.method, {}});
                it = pan.series.end() - 1;
            }
            it->points.push_back(cp);
        };
        add(panels[0], pointOf(p, ratio, EvalMeasure::Agreement));
        add(panels[1], pointOf(p, ratio, EvalMeasure::Kl));
        add(panels[2], pointOf(p, p.run.msMerged, EvalMeasure::Agreement));
        if (labelled) add(panels[3], pointOf(p, ratio, EvalMeasure::AccuracyMerged));
    }
    writeCurvePanels(panels, "model sweep: mean over seeds, bars = 95 % intervals",
                     path("sweep.png"));
}

} // namespace qmpp
