// qmpp run INPUT --out DIR ... and qmpp tokenize IMAGE --out tokens.npy.
#include "commands.h"

#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"
#include "qmpp/report.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace qmpp::cli {

namespace {

struct RunArgs {
    std::string input, out;
    i64 tokens = 0;
    double budget = 0.2;
    MergeParams p;
    std::string uniform, arWeights, cluster = "seeded", backend = "auto", precision = "fp32";
    InputOptions in;
    bool force = false, quiet = false;
};

std::string nowIso() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::ostringstream os;
    os << std::put_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    return os.str();
}

// Means of the scalar metrics and losses over a batch.
nlohmann::ordered_json meanOf(const std::vector<MergeResult>& rs, const char* part) {
    nlohmann::ordered_json acc;
    for (const auto& r : rs) {
        const auto j = std::string(part) == "losses" ? lossesJson(r.losses) : metricsJson(r.metrics);
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

int doRun(const RunArgs& a) {
    MergeParams p = a.p;
    p.k = a.tokens;
    p.budget = a.budget;
    parse(a.cluster, p.cluster);
    parse(a.backend, p.backend);
    parse(a.precision, p.precision);
    if (p.precision == Precision::FP16 && p.backend == BackendKind::Cpu)
        throw UsageError("--precision fp16 needs a CUDA backend; the CPU backend runs fp32");

    OutputDir out(a.out, a.force); // refuse early: before any work is done
    const LoadedInput in = loadInput(a.input, a.in);
    if (!a.uniform.empty()) p.uniforms = loadUniforms(a.uniform);
    if (!a.arWeights.empty()) p.arHeads = loadArHeads(a.arWeights, in.items[0].d);

    std::vector<MergeResult> results;
    for (const auto& t : in.items) results.push_back(runMerge(t, p));
    const MergeResult& r0 = results.front();

    std::vector<std::string> files = writeResultArrays(out.tempDir(), results, in.batched);
    if (in.image) {
        const auto pngs = writeImageOverlays(*in.image, in.items[0], r0, out.tempDir());
        files.insert(files.end(), pngs.begin(), pngs.end());
    }
    files.push_back("report.json");

    nlohmann::ordered_json rep;
    rep["tool"] = "qmpp";
    rep["version"] = kVersion;
    rep["created"] = nowIso();
    auto& jin = rep["input"];
    jin["path"] = a.input;
    jin["kind"] = in.kind == InputKind::Image ? "image" : "embeddings";
    jin["shape"] = in.sourceShape;
    jin["n"] = r0.n;
    jin["d"] = r0.d;
    if (in.batched) jin["batch_size"] = results.size();
    if (a.in.batch >= 0) jin["batch_index"] = a.in.batch;
    if (in.image) {
        jin["patch"] = in.image->patch;
        jin["grid"] = {in.items[0].gridRows, in.items[0].gridCols};
        jin["image_size"] = {in.image->width, in.image->height};
        jin["original_size"] = {in.image->originalWidth, in.image->originalHeight};
        jin["projection"] = a.in.projection.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(a.in.projection);
    }
    if (!a.in.hidden.empty()) jin["hidden_states"] = a.in.hidden;
    if (!a.in.attention.empty()) jin["attention"] = a.in.attention;
    rep["parameters"] = paramsJson(p, r0.k);
    if (!a.uniform.empty()) rep["parameters"]["uniforms"] = a.uniform;
    if (in.batched) {
        rep["losses"] = meanOf(results, "losses");
        rep["metrics"] = meanOf(results, "metrics");
        rep["aggregate"] = "losses and metrics are means over the batch; see items";
    } else {
        rep["losses"] = lossesJson(r0.losses);
        rep["metrics"] = metricsJson(r0.metrics);
    }
    rep["refine_rounds"] = r0.refineRounds;
    rep["timings_ms"] = timingsJson(r0.timings);
    rep["backend"] = r0.backend;
    rep["device"] = r0.device;
    rep["precision"] = r0.precision;
    rep["saliency_source"] = r0.saliencySource;
    rep["ar_heads"] = r0.arHeadsSource;
    rep["notes"] = r0.notes;
    if (in.batched) {
        rep["items"] = nlohmann::ordered_json::array();
        for (const auto& r : results) rep["items"].push_back(resultJson(r));
    }
    rep["outputs"] = files;
    const std::string text = rep.dump(2) + "\n";
    writeFileBytes(out.path("report.json"), std::vector<std::uint8_t>(text.begin(), text.end()));
    out.commit();

    if (!a.quiet) {
        for (const auto& note : r0.notes) std::cerr << "qmpp: note: " << note << "\n";
        std::cout << "merged " << r0.n << " tokens (D = " << r0.d << ") into K = " << r0.k
                  << (in.batched ? " for each of " + std::to_string(results.size()) + " items" : "")
                  << " on " << r0.device << " in " << std::fixed << std::setprecision(1)
                  << r0.timings.back().ms << " ms\n"
                  << std::setprecision(4) << "  reconstruction_error " << r0.metrics.reconstructionError
                  << "  mean_cosine " << r0.metrics.meanCosine << "  norm_mass_retention "
                  << r0.metrics.normMassRetention << (r0.metrics.fidelityOk ? " (>= gamma)" : " (< gamma)")
                  << "\n  outputs in " << a.out << ":";
        for (const auto& f : files) std::cout << " " << f;
        std::cout << "\n";
    }
    return kOk;
}

} // namespace

Runner addRun(CLI::App& app) {
    auto a = std::make_shared<RunArgs>();
    CLI::App* c = app.add_subcommand("run", "Merge the tokens of INPUT and write the results into DIR");
    c->add_option("INPUT", a->input, "tokens (.npy/.safetensors: [N,D] or [B,N,D]) or an image")->required();
    c->add_option("--out", a->out, "output folder (created; refused if it holds results)")->required();
    auto* tok = c->add_option("--tokens", a->tokens, "K, the number of merged tokens");
    c->add_option("--budget", a->budget, "K = max(1, floor(budget * N)) (default 0.2)")->excludes(tok);
    c->add_option("--temperature", a->p.temperature, "Gumbel-softmax temperature tau (default 0.1)");
    c->add_option("--epsilon", a->p.epsilon, "background weight in the mass (default 0.01)");
    c->add_option("--gamma", a->p.gamma, "norm-mass ratio for fidelity_ok (default 0.8)");
    c->add_option("--alpha", a->p.alpha, "AR-loss weight in the total loss (default 0.1)");
    c->add_option("--layers", a->p.layers, "multi-scale layers L when saliency comes from the tokens (default 1)");
    c->add_option("--refine", a->p.refine, "refinement rounds R of seeded clustering (default 3)");
    c->add_option("--seed", a->p.seed, "Philox seed of the Gumbel uniforms (default 0)");
    c->add_option("--uniform", a->uniform, "supplied Gumbel uniforms [N] (.npy/.safetensors)");
    c->add_option("--hidden-states", a->in.hidden, "hidden states [L,N,D] (.npy/.safetensors)");
    c->add_option("--attention", a->in.attention, "attention maps [L,N,N] or [L,H,N,N]");
    c->add_option("--cluster", a->cluster, "seeded | agglomerative | reference (default seeded)")
        ->check(CLI::IsMember({"seeded", "agglomerative", "reference"}));
    c->add_option("--ar-weights", a->arWeights, "AR heads (.safetensors, the seed's state_dict names)");
    c->add_option("--patch", a->in.patch, "image patch size P (default 16)");
    c->add_option("--projection", a->in.projection, "ViT patch-embedding weight [D',3,P,P] (+ bias)");
    c->add_option("--key", a->in.key, "tensor name inside a .safetensors INPUT");
    c->add_option("--labels", a->in.labels, "text file, one token label per line");
    c->add_option("--batch", a->in.batch, "process only item I of a [B,N,D] input");
    c->add_option("--backend", a->backend, "auto | cpu (default auto)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda-basic", "cuda"}));
    c->add_option("--precision", a->precision, "fp32 | fp16 (fp16 needs CUDA; default fp32)")
        ->check(CLI::IsMember({"fp32", "fp16"}));
    c->add_flag("--force", a->force, "replace results already in DIR");
    c->add_flag("--quiet", a->quiet, "print nothing on success");
    return [a] { return doRun(*a); };
}

Runner addTokenize(CLI::App& app) {
    struct Args {
        std::string input, out, projection;
        int patch = 16;
        bool force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand("tokenize", "Write the tokens the engine would see for IMAGE as .npy [N,D]");
    c->add_option("INPUT", a->input, "an image (png, jpg, bmp, tiff, webp)")->required();
    c->add_option("--out", a->out, "output .npy file")->required();
    c->add_option("--patch", a->patch, "patch size P (default 16)");
    c->add_option("--projection", a->projection, "ViT patch-embedding weight [D',3,P,P] (+ bias)");
    c->add_flag("--force", a->force, "replace an existing output file");
    return [a] {
        if (fileExtension(a->out) != ".npy") throw UsageError("--out must name a .npy file");
        if (!a->force && std::ifstream(a->out).good())
            throw InputError(a->out + ": exists; use --force to replace it");
        if (inputKind(a->input) != InputKind::Image)
            throw InputError(a->input + ": tokenize takes an image (png, jpg, bmp, tiff, webp)");
        std::optional<Projection> proj;
        if (!a->projection.empty()) proj = loadProjection(a->projection, a->patch);
        ImageInput img;
        const TokenSet t = tokenizeImage(a->input, a->patch, proj ? &*proj : nullptr, &img);
        // Write beside the target, then rename: a failure leaves no half-written file.
        const std::string tmp = a->out + ".qmpp-partial";
        try {
            writeNpy(tmp, NdArray::fromFloat(t.x, {t.n, t.d}));
            if (std::rename(tmp.c_str(), a->out.c_str()) != 0)
                throw RuntimeFailure(a->out + ": cannot move the tokens into place");
        } catch (...) {
            std::remove(tmp.c_str());
            throw;
        }
        std::cout << "wrote " << a->out << ": tokens [" << t.n << ", " << t.d << "], grid "
                  << t.gridRows << " x " << t.gridCols << " of " << a->patch << "-pixel patches ("
                  << img.width << " x " << img.height << ")\n";
        return kOk;
    };
}

} // namespace qmpp::cli
