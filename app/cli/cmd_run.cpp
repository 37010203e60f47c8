// qmpp run INPUT --out DIR ... and qmpp tokenize IMAGE --out tokens.npy.
#include "commands.h"

#include "qmpp/engine.h"
#include "qmpp/export.h"
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
    std::string uniform, arWeights, cluster = "seeded", backend = "auto", precision = "fp32",
                method = "quickmerge";
    InputOptions in;
    bool force = false, quiet = false;
};

int doRun(const RunArgs& a) {
    MergeParams p = a.p;
    p.k = a.tokens;
    p.budget = a.budget;
    parse(a.cluster, p.cluster);
    parse(a.method, p.method);
    parse(a.backend, p.backend);
    parse(a.precision, p.precision);
    if (p.precision == Precision::FP16 && p.backend == BackendKind::Cpu)
        throw UsageError("--precision fp16 needs a CUDA backend; the CPU backend runs fp32");

    OutputDir::checkTarget(a.out, a.force); // refuse before any work is done
    const LoadedInput in = loadInput(a.input, a.in);
    if (!a.uniform.empty()) p.uniforms = loadUniforms(a.uniform);
    if (!a.arWeights.empty()) p.arHeads = loadArHeads(a.arWeights, in.items[0].d);

    RunRecord run;
    run.inputPath = a.input;
    run.inputOptions = a.in;
    run.input = &in;
    run.params = p;
    run.uniformsPath = a.uniform;
    for (const auto& t : in.items) run.results.push_back(runMerge(t, p));
    const MergeResult& r0 = run.results.front();
    const std::vector<std::string> files = exportRun(a.out, a.force, run);
    const auto& results = run.results;

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
    c->add_option("--method", a->method, "quickmerge | tome | topk | random (default quickmerge)")
        ->check(CLI::IsMember({"quickmerge", "tome", "topk", "random"}));
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
