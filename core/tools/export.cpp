// The output folder of a run: arrays, overlays for images, report.json.
#include "qmpp/export.h"

#include "qmpp/diagnostics.h"
#include "qmpp/engine.h"
#include "qmpp/io.h"
#include "qmpp/render.h"
#include "qmpp/report.h"
#include "qmpp/views.h"

#include <ctime>
#include <iomanip>
#include <sstream>

namespace qmpp {

namespace {

using json = nlohmann::ordered_json;

// Means of the scalar losses or metrics over a batch.
json meanOf(const std::vector<MergeResult>& rs, bool losses) {
    json acc;
    for (const auto& r : rs) {
        const json j = losses ? lossesJson(r.losses) : metricsJson(r.metrics);
        for (auto it = j.begin(); it != j.end(); ++it)
            if (it.value().is_number() || it.value().is_boolean()) {
                const double v = it.value().is_boolean() ? double(it.value().get<bool>())
                                                         : it.value().get<double>();
                acc[it.key()] = (acc.contains(it.key()) ? acc[it.key()].get<double>() : 0.0) +
                                v / double(rs.size());
            }
    }
    return acc;
}

// Token strings with each token's group and saliency, the merged spans and each group's text.
json textJson(const std::vector<std::string>& labels, const MergeResult& r) {
    json j;
    j["tokens"] = json::array();
    for (i64 i = 0; i < r.n; ++i)
        j["tokens"].push_back({{"index", i},
                               {"text", labels[i]},
                               {"group", r.labels[i]},
                               {"saliency", r.saliency[i]}});
    j["spans"] = json::array();
    for (const TextSpan& s : mergedSpans(r.labels))
        j["spans"].push_back({{"begin", s.begin},
                              {"end", s.end},
                              {"group", s.group},
                              {"text", spanText(labels, s)}});
    j["groups"] = json::array();
    for (const TextGroup& g : textGroups(labels, r.labels, r.k))
        j["groups"].push_back({{"group", g.group}, {"size", g.size}, {"text", g.text}});
    return j;
}

} // namespace

json runReport(const RunRecord& run, const std::vector<std::string>& files) {
    const MergeResult& r0 = run.results.front();
    const LoadedInput& in = *run.input;
    const bool batched = in.batched;
    json rep;
    rep["tool"] = "qmpp";
    rep["version"] = kVersion;
    rep["created"] = isoTimeNow();
    auto& jin = rep["input"];
    jin["path"] = run.inputPath;
    jin["kind"] = in.kind == InputKind::Image ? "image" : "embeddings";
    jin["shape"] = in.sourceShape;
    jin["n"] = r0.n;
    jin["d"] = r0.d;
    if (batched) jin["batch_size"] = run.results.size();
    if (run.inputOptions.batch >= 0) jin["batch_index"] = run.inputOptions.batch;
    if (in.image) {
        jin["patch"] = in.image->patch;
        jin["grid"] = {in.items[0].gridRows, in.items[0].gridCols};
        jin["image_size"] = {in.image->width, in.image->height};
        jin["original_size"] = {in.image->originalWidth, in.image->originalHeight};
        jin["projection"] =
            run.inputOptions.projection.empty() ? json(nullptr) : json(run.inputOptions.projection);
    }
    if (!run.inputOptions.hidden.empty()) jin["hidden_states"] = run.inputOptions.hidden;
    if (!run.inputOptions.attention.empty()) jin["attention"] = run.inputOptions.attention;
    rep["parameters"] = paramsJson(run.params, r0.k, r0.n);
    if (!run.uniformsPath.empty()) rep["parameters"]["uniforms"] = run.uniformsPath;
    if (batched) {
        rep["losses"] = meanOf(run.results, true);
        rep["metrics"] = meanOf(run.results, false);
        rep["aggregate"] = "losses and metrics are means over the batch; see items";
    } else {
        rep["losses"] = lossesJson(r0.losses);
        rep["metrics"] = metricsJson(r0.metrics);
        rep["diagnostics"] =
            diagnosticsJson(diagnose(r0, run.params.epsilon), run.params.temperature);
    }
    const json first = resultJson(r0);
    for (const char* key : {"method", "refine_rounds", "timings_ms", "backend", "device",
                            "precision", "saliency_source", "ar_heads", "notes"})
        rep[key] = first[key];
    if (batched) {
        rep["items"] = json::array();
        for (const auto& r : run.results) {
            rep["items"].push_back(resultJson(r));
            if (!in.items[0].labels.empty())
                rep["items"].back()["text"] = textJson(in.items[0].labels, r);
        }
    } else if (!in.items[0].labels.empty()) {
        rep["text"] = textJson(in.items[0].labels, r0);
    }
    rep["outputs"] = files;
    return rep;
}

std::vector<std::string> exportRun(const std::string& dir, bool force, const RunRecord& run) {
    OutputDir out(dir, force);
    std::vector<std::string> files =
        writeResultArrays(out.tempDir(), run.results, run.input->batched);
    // the input tokens the run merged ([N, D], or [B, N, D] for a batch): the folder alone
    // reproduces the run
    std::vector<float> x;
    const TokenSet& t0 = run.input->items.front();
    for (std::size_t i = 0; i < run.results.size(); ++i)
        x.insert(x.end(), run.input->items[i].x.begin(), run.input->items[i].x.end());
    std::vector<i64> shape = {t0.n, t0.d};
    if (run.input->batched) shape.insert(shape.begin(), i64(run.results.size()));
    writeNpy(out.path("tokens.npy"), NdArray::fromFloat(std::move(x), shape));
    files.push_back("tokens.npy");
    if (run.input->image) {
        const auto pngs = writeImageOverlays(*run.input->image, run.input->items[0],
                                             run.results.front(), out.tempDir());
        files.insert(files.end(), pngs.begin(), pngs.end());
    }
    files.push_back("report.json");
    const std::string text = runReport(run, files).dump(2) + "\n";
    writeFileBytes(out.path("report.json"), std::vector<std::uint8_t>(text.begin(), text.end()));
    out.commit();
    return files;
}

} // namespace qmpp
