// JSON views of the engine's structs and the arrays a run writes.
#include "qmpp/report.h"
#include "qmpp/diagnostics.h"
#include "qmpp/engine.h"
#include "qmpp/io.h"

#include <cmath>

namespace qmpp {

using json = nlohmann::ordered_json;

json paramsJson(const MergeParams& p, i64 k, i64 n) {
    json j;
    j["k"] = k;
    // the budget asked for, or with K asked for, the share of tokens K keeps
    j["budget"] = p.k == 0 ? json(p.budget) : n > 0 ? json(double(k) / double(n)) : json(nullptr);
    j["k_from"] = p.k == 0 ? "budget" : "tokens";
    j["temperature"] = p.temperature;
    j["epsilon"] = p.epsilon;
    j["gamma"] = p.gamma;
    j["alpha"] = p.alpha;
    j["layers"] = p.layers;
    j["refine"] = p.refine;
    j["seed"] = p.seed;
    j["uniforms"] = p.uniforms.empty() ? "curand philox4_32_10 (seed, offset 0)" : "supplied";
    j["method"] = toString(p.method);
    j["cluster"] = toString(p.cluster);
    j["backend"] = toString(p.backend);
    j["precision"] = toString(p.precision);
    return j;
}

json lossesJson(const Losses& l) {
    return json{{"ar", l.ar},
                {"ar_forward", l.arForward},
                {"ar_backward", l.arBackward},
                {"fidelity", l.fidelity},
                {"total", l.total}};
}

json metricsJson(const Metrics& m) {
    json j;
    j["reconstruction_error"] = m.reconstructionError;
    j["mean_cosine"] = m.meanCosine;
    j["reconstruction_error_nearest_kept"] = m.reconstructionErrorNearestKept;
    j["mean_cosine_nearest_kept"] = m.meanCosineNearestKept;
    j["norm_mass_top_k"] = m.normMassTopK;
    j["norm_mass_retention"] = m.normMassRetention;
    j["fidelity_ok"] = m.fidelityOk;
    j["saliency_retention"] = m.saliencyRetention;
    j["group_size_min"] = m.groupSizeMin;
    j["group_size_median"] = m.groupSizeMedian;
    j["group_size_max"] = m.groupSizeMax;
    j["group_size_histogram"] = {{"bins", "[2^b, 2^(b+1))"}, {"counts", m.groupSizeHistogram}};
    j["ar_error_forward"] = m.arErrorForward;
    j["ar_error_backward"] = m.arErrorBackward;
    return j;
}

json diagnosticsJson(const MethodDiagnostics& d, double tau) {
    json j;
    if (d.hasMask) {
        j["pi_max"] = d.piMax;
        j["pi_effective_tokens"] = d.piEffective;
        j["mass_at_epsilon"] = d.massAtEpsilon;
        j["pi_degenerate"] = d.piDegenerate;
        j["noise_decided_share"] = d.noiseDecided;
    }
    j["position_rank_correlation"] =
        std::isfinite(d.positionRankCorrelation) ? json(d.positionRankCorrelation) : json(nullptr);
    j["warnings"] = diagnosticWarnings(d, tau);
    return j;
}

json timingsJson(const std::vector<StageTiming>& t) {
    json j = json::object();
    for (const auto& s : t)
        j[s.stage] = s.ms;
    return j;
}

json resultJson(const MergeResult& r) {
    json j;
    j["n"] = r.n;
    j["d"] = r.d;
    j["k"] = r.k;
    j["method"] = r.method;
    j["refine_rounds"] = r.refineRounds;
    j["losses"] = lossesJson(r.losses);
    j["metrics"] = metricsJson(r.metrics);
    j["timings_ms"] = timingsJson(r.timings);
    j["backend"] = r.backend;
    j["device"] = r.device;
    j["precision"] = r.precision;
    j["saliency_source"] = r.saliencySource;
    j["ar_heads"] = r.arHeadsSource;
    j["notes"] = r.notes;
    return j;
}

const std::vector<std::string>& outputFileNames() {
    static const std::vector<std::string> names = {
        "merged.npy", "labels.npy", "saliency.npy", "mask.npy", "mass.npy", "result.safetensors",
        "report.json", "saliency.png", "clusters.png", "merged.png", "overlay.avi", "sweep.csv",
        "sweep.json", "sweep.png", "report.html", "report.pdf", "tokens.npy",
        // qmpp eval
        "eval.json", "measures.csv", "predictions.csv", "logits_plain.npy", "logits_merged.npy",
        "overlays.json", "nll_plain.npy", "nll_merged.npy"};
    return names;
}

const std::vector<std::string>& outputFolderNames() {
    // qmpp eval --overlays's pictures; a studio report's model evaluation and its sweep
    static const std::vector<std::string> names = {"overlays", "model", "model-sweep"};
    return names;
}

std::vector<std::string> writeResultArrays(const std::string& dir,
                                           const std::vector<MergeResult>& results, bool batched) {
    const MergeResult& r0 = results.front();
    const i64 b = static_cast<i64>(results.size());
    auto shape = [&](std::vector<i64> s) {
        if (batched) s.insert(s.begin(), b);
        return s;
    };
    auto stackF = [&](auto member) {
        std::vector<float> v;
        for (const auto& r : results)
            v.insert(v.end(), (r.*member).begin(), (r.*member).end());
        return v;
    };
    auto stackI = [&](auto member) {
        std::vector<i64> v;
        for (const auto& r : results)
            v.insert(v.end(), (r.*member).begin(), (r.*member).end());
        return v;
    };
    TensorFile f;
    f.tensors = {
        {"merged", NdArray::fromFloat(stackF(&MergeResult::merged), shape({r0.k, r0.d}))},
        {"labels", NdArray::fromInt64(stackI(&MergeResult::labels), shape({r0.n}))},
        {"saliency", NdArray::fromFloat(stackF(&MergeResult::saliency), shape({r0.n}))},
        {"mask", NdArray::fromFloat(stackF(&MergeResult::pi), shape({r0.n}))},
        {"mass", NdArray::fromFloat(stackF(&MergeResult::mass), shape({r0.n}))},
        {"group_sizes", NdArray::fromInt64(stackI(&MergeResult::groupSizes), shape({r0.k}))},
        {"foreground", NdArray::fromInt64(stackI(&MergeResult::foreground), shape({r0.k}))},
        {"uniforms", NdArray::fromFloat(stackF(&MergeResult::uniforms), shape({r0.n}))},
        {"layer_entropy",
         NdArray::fromFloat(stackF(&MergeResult::layerEntropy), shape({r0.layers, r0.n}))},
    };
    f.metadata = {{"format", "qmpp-result"}, {"version", kVersion}};
    std::vector<std::string> written;
    for (const char* name : {"merged", "labels", "saliency", "mask", "mass"}) {
        writeNpy(dir + "/" + name + ".npy", *f.find(name));
        written.push_back(std::string(name) + ".npy");
    }
    writeSafetensors(dir + "/result.safetensors", f);
    written.push_back("result.safetensors");
    return written;
}

} // namespace qmpp
