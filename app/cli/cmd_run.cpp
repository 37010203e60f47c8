// qmpp run INPUT --out DIR ... and qmpp tokenize IMAGE --out tokens.npy.
#include "commands.h"

#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/export.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"
#include "qmpp/report.h"
#include "qmpp/videoexport.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
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
    std::string frames; // video: A:B
    VideoOptions video;
    bool force = false, quiet = false, tokensOnly = false;
};

// --frames, --tubelet, --window and --width of `run` and `tokenize`.
void addVideoOptions(CLI::App* c, std::string& frames, VideoOptions& v) {
    c->add_option("--frames", frames, "video: half-open frame range A:B (default: all)");
    c->add_option("--tubelet", v.tubelet,
                  "video: tokens are tubelets of T frames x P x P (default 1)");
    c->add_option("--window", v.window, "video: frames per merge, a multiple of T (default T)");
    c->add_option("--width", v.width, "video: resize frames to this width first (default: own)");
}

// Video options from the CLI; the projection outlives the call through `proj`.
VideoOptions videoOptions(VideoOptions o, int patch, const std::string& projection,
                          std::optional<Projection>& proj) {
    o.patch = patch;
    if (!projection.empty()) proj = loadProjection(projection, patch);
    o.projection = proj ? &*proj : nullptr;
    validate(o);
    return o;
}

int doRunVideo(const RunArgs& a, const MergeParams& p) {
    if (!a.in.hidden.empty() || !a.in.attention.empty() || !a.in.labels.empty() ||
        a.in.batch >= 0 || !a.uniform.empty())
        throw UsageError("--hidden-states, --attention, --labels, --batch and --uniform apply to "
                         "token files, not to a video");
    std::optional<Projection> proj;
    const VideoOptions o = videoOptions(a.video, a.in.patch, a.in.projection, proj);
    const FrameRange range = a.frames.empty() ? FrameRange{} : parseFrameRange(a.frames);
    requireInputsOutside({a.input, a.in.projection}, a.out);
    const VideoRun run = exportVideo(a.input, o, range, p, a.out, a.force);
    if (!a.quiet) {
        const auto sum = videoSummary(run);
        const MergeResult& r0 = run.results.front();
        std::cout << "merged frames " << toString(run.range) << " of " << a.input << " ("
                  << run.results.size() << " units of " << windowOf(o) << " frame(s), N = " << r0.n
                  << " -> K = " << r0.k << ") on " << r0.device << "\n"
                  << std::fixed << std::setprecision(2) << "  pipeline "
                  << sum["pipeline_ms_per_frame"].get<double>() << " ms per frame (median unit "
                  << sum["pipeline_ms_median"].get<double>() << " ms)" << std::setprecision(3)
                  << "  flicker mean " << sum["flicker_mean"].get<double>() << " max "
                  << sum["flicker_max"].get<double>() << "\n  outputs in " << a.out << ":";
        for (const auto& f : run.files)
            std::cout << " " << f;
        std::cout << "\n";
    }
    return kOk;
}

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

    if (inputKind(a.input) == InputKind::Video) return doRunVideo(a, p);
    if (!a.frames.empty() || a.video.tubelet != 1 || a.video.window != 0 || a.video.width != 0)
        throw UsageError("--frames, --tubelet, --window and --width apply to video inputs");
    OutputDir::checkTarget(a.out, a.force); // refuse before any work is done
    InputOptions opt = a.in;
    if (!a.tokensOnly) attachOwnTensors(a.input, opt); // as the studio opens the file
    requireInputsOutside(
        {a.input, opt.hidden, opt.attention, opt.labels, opt.projection, a.uniform, a.arWeights},
        a.out);
    const LoadedInput in = loadInput(a.input, opt);
    if (!a.uniform.empty()) p.uniforms = loadUniforms(a.uniform);
    if (!a.arWeights.empty()) p.arHeads = loadArHeads(a.arWeights, in.items[0].d);

    RunRecord run;
    run.inputPath = a.input;
    run.inputOptions = opt;
    run.input = &in;
    run.params = p;
    run.uniformsPath = a.uniform;
    for (const auto& t : in.items)
        run.results.push_back(runMerge(t, p));
    const MergeResult& r0 = run.results.front();
    const std::vector<std::string> files = exportRun(a.out, a.force, run);
    const auto& results = run.results;

    if (!a.quiet) {
        for (const auto& note : r0.notes)
            std::cerr << "qmpp: note: " << note << "\n";
        std::cout << "merged " << r0.n << " tokens (D = " << r0.d << ") into K = " << r0.k
                  << (in.batched ? " for each of " + std::to_string(results.size()) + " items" : "")
                  << " on " << r0.device << " in " << std::fixed << std::setprecision(1)
                  << r0.timings.back().ms << " ms\n"
                  << std::setprecision(4) << "  reconstruction_error "
                  << r0.metrics.reconstructionError << "  mean_cosine " << r0.metrics.meanCosine
                  << "  norm_mass_retention " << r0.metrics.normMassRetention
                  << (r0.metrics.fidelityOk ? " (>= gamma)" : " (< gamma)") << "\n";
        if (r0.metrics.meanCosineNearestKept != r0.metrics.meanCosine)
            std::cout << "  with each dropped token as its nearest kept one: reconstruction_error "
                      << r0.metrics.reconstructionErrorNearestKept << "  mean_cosine "
                      << r0.metrics.meanCosineNearestKept << "\n";
        std::cout << "  outputs in " << a.out << ":";
        for (const auto& f : files)
            std::cout << " " << f;
        std::cout << "\n";
    }
    return kOk;
}

} // namespace

Runner addRun(CLI::App& app) {
    auto a = std::make_shared<RunArgs>();
    CLI::App* c =
        app.add_subcommand("run", "Merge the tokens of INPUT and write the results into DIR");
    c->add_option("INPUT", a->input,
                  "tokens (.npy/.safetensors: [N,D] or [B,N,D]), an image or a video")
        ->required();
    c->add_option("--out", a->out, "output folder (created; refused if it holds results)")
        ->required();
    auto* tok = c->add_option("--tokens", a->tokens, "K, the number of merged tokens")
                    ->check(atLeast(1, "K"));
    c->add_option("--budget", a->budget, "K = max(1, floor(budget * N)) (default 0.2)")
        ->excludes(tok);
    c->add_option("--temperature", a->p.temperature,
                  "Gumbel-softmax temperature tau (default 0.1)");
    c->add_option("--epsilon", a->p.epsilon, "background weight in the mass (default 0.01)");
    c->add_option("--gamma", a->p.gamma, "norm-mass ratio for fidelity_ok (default 0.8)");
    c->add_option("--alpha", a->p.alpha, "AR-loss weight in the total loss (default 0.1)");
    c->add_option("--layers", a->p.layers,
                  "multi-scale layers L when saliency comes from the tokens (default 1)");
    c->add_option("--refine", a->p.refine, "refinement rounds R of seeded clustering (default 3)");
    c->add_option("--seed", a->p.seed, "Philox seed of the Gumbel uniforms (default 0)")
        ->check(seedValidator());
    c->add_option("--uniform", a->uniform, "supplied Gumbel uniforms [N] (.npy/.safetensors)");
    c->add_option("--hidden-states", a->in.hidden, "hidden states [L,N,D] (.npy/.safetensors)");
    c->add_option("--attention", a->in.attention, "attention maps [L,N,N] or [L,H,N,N]");
    c->add_option("--hidden-key", a->in.hiddenKey,
                  "tensor name of the hidden states in their .safetensors (default hidden_states)");
    c->add_option("--attention-key", a->in.attentionKey,
                  "tensor name of the attention maps in their .safetensors (default attentions)");
    c->add_option("--method", a->method, "quickmerge | tome | topk | random (default quickmerge)")
        ->check(CLI::IsMember({"quickmerge", "tome", "topk", "random"}));
    c->add_option("--cluster", a->cluster, "seeded | agglomerative | reference (default seeded)")
        ->check(CLI::IsMember({"seeded", "agglomerative", "reference"}));
    c->add_option("--ar-weights", a->arWeights,
                  "AR heads (.safetensors, the seed's state_dict names)");
    c->add_option("--patch", a->in.patch, "image patch size P (default 16)");
    addVideoOptions(c, a->frames, a->video);
    c->add_option("--projection", a->in.projection,
                  "ViT patch-embedding weight [D',3,P,P] (+ bias)");
    c->add_option("--key", a->in.key, "tensor name inside a .safetensors INPUT");
    c->add_flag("--tokens-only", a->tokensOnly,
                "ignore a .safetensors INPUT's own hidden_states and attentions tensors (by "
                "default they give the saliency, as in the studio)");
    c->add_option("--labels", a->in.labels,
                  "text file, one token label per line (report.json then lists the token strings "
                  "and merged spans)");
    c->add_option("--batch", a->in.batch, "process only item I of a [B,N,D] input")
        ->check(atLeast(0, "the item index"));
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
        std::string input, out, projection, frames, dtype = "float32";
        int patch = 16;
        VideoOptions video;
        bool force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand(
        "tokenize",
        "Write the tokens the engine would see for an IMAGE ([N,D]) or a VIDEO ([U,N,D]) as .npy");
    c->add_option("INPUT", a->input,
                  "an image (png, jpg, bmp, tiff, webp) or a video (mp4, avi, mkv)")
        ->required();
    c->add_option("--out", a->out, "output .npy file")->required();
    c->add_option("--patch", a->patch, "patch size P (default 16)");
    c->add_option("--projection", a->projection, "ViT patch-embedding weight [D',3,P,P] (+ bias)");
    addVideoOptions(c, a->frames, a->video);
    c->add_option("--dtype", a->dtype, "float32 | float16 (default float32)")
        ->check(CLI::IsMember({"float32", "float16"}));
    c->add_flag("--force", a->force, "replace an existing output file");
    return [a] {
        if (fileExtension(a->out) != ".npy") throw UsageError("--out must name a .npy file");
        if (!a->force && std::ifstream(a->out).good())
            throw InputError(a->out + ": exists; use --force to replace it");
        const InputKind kind = inputKind(a->input);
        if (kind != InputKind::Image && kind != InputKind::Video)
            throw InputError(a->input +
                             ": tokenize takes an image (png, jpg, bmp, tiff, webp) or a "
                             "video (mp4, avi, mkv)");
        std::optional<Projection> proj;
        const DType dtype = a->dtype == "float16" ? DType::F16 : DType::F32;
        NdArray tokens;
        std::ostringstream said;
        if (kind == InputKind::Image) {
            if (!a->frames.empty() || a->video.tubelet != 1 || a->video.window != 0 ||
                a->video.width != 0)
                throw UsageError("--frames, --tubelet, --window and --width apply to videos");
            if (!a->projection.empty()) proj = loadProjection(a->projection, a->patch);
            ImageInput img;
            const TokenSet t = tokenizeImage(a->input, a->patch, proj ? &*proj : nullptr, &img);
            tokens = NdArray::fromFloatAs(t.x, {t.n, t.d}, dtype);
            said << "tokens [" << t.n << ", " << t.d << "], grid " << t.gridRows << " x "
                 << t.gridCols << " of " << a->patch << "-pixel patches (" << img.width << " x "
                 << img.height << ")";
        } else {
            const VideoOptions o = videoOptions(a->video, a->patch, a->projection, proj);
            const FrameRange range = a->frames.empty() ? FrameRange{} : parseFrameRange(a->frames);
            VideoReader reader(a->input, o);
            std::vector<float> all;
            i64 units = 0, n = 0, d = 0;
            TokenSet last;
            forEachUnit(reader, o, range, [&](VideoUnit& u) {
                n = u.tokens.n;
                d = u.tokens.d;
                if (double(all.size() + u.tokens.x.size()) * 4 > 16e9)
                    throw InputError(a->input + ": the tokens of " + a->frames +
                                     " exceed 16 GB; "
                                     "choose a shorter --frames range or a smaller --width");
                all.insert(all.end(), u.tokens.x.begin(), u.tokens.x.end());
                ++units;
                last.gridRows = u.tokens.gridRows;
                last.gridCols = u.tokens.gridCols;
                last.gridFrames = u.tokens.gridFrames;
                return true;
            });
            if (units == 0) // never an empty [0, 0, 0] array: run refuses the same file
                throw InputError(a->input + ": no frame of " + toString(range) +
                                 " could be decoded");
            tokens = NdArray::fromFloatAs(all, {units, n, d}, dtype);
            said << "tokens [" << units << ", " << n << ", " << d << "]: " << units
                 << " unit(s) of " << windowOf(o) << " frame(s), grid " << last.gridFrames << " x "
                 << last.gridRows << " x " << last.gridCols << " of " << a->patch << "-pixel "
                 << (o.tubelet > 1 ? "tubelets of " + std::to_string(o.tubelet) + " frames"
                                   : "patches");
        }
        // Written beside the target under a name of its own, then renamed: a failure or a
        // signal leaves no half-written file and touches no file of the user's.
        writeFileAtomic(a->out, encodeNpy(tokens));
        std::cout << "wrote " << a->out << ": " << said.str() << "\n";
        return kOk;
    };
}

} // namespace qmpp::cli
