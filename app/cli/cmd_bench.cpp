// qmpp bench --backend cpu: per-stage and whole-pipeline timing statistics.
#include "benchmodel.h"
#include "commands.h"

#include "qmpp/bench.h"
#include "qmpp/benchfile.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/videoexport.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

namespace qmpp::cli {

Runner addBench(CLI::App& app) {
    struct Args {
        BenchOptions o;
        std::string baseline;
        double threshold = 0.05;
        std::string backend = "cpu", json, cluster = "seeded", frames, video, precision = "fp32",
                    trace, csv;
        i64 play = 300;
        VideoOptions vo;
        BenchModelArgs model;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand("bench", "Time every stage and the whole pipeline");
    c->add_option("--backend", a->backend, "cpu | cuda-basic | cuda (default cpu)")
        ->check(CLI::IsMember({"cpu", "cuda-basic", "cuda"}));
    c->add_option("--tokens-list", a->o.tokens, "token counts N (default 196,1024,4096)")
        ->delimiter(',');
    c->add_option("--dim", a->o.dim, "token dimension D (default 768)");
    c->add_option("--layers", a->o.layers, "multi-scale layer counts L (default 1,12)")
        ->delimiter(',');
    c->add_option("--repeats", a->o.repeats,
                  "timed repeats after warm-up (default 7; at least 20 on a GPU)");
    c->add_option("--budget", a->o.budget, "K = floor(budget * N) (default 0.2)");
    c->add_option("--cluster", a->cluster, "seeded | agglomerative | reference (default seeded)")
        ->check(CLI::IsMember({"seeded", "agglomerative", "reference"}));
    c->add_option("--json", a->json, "write the statistics as JSON");
    c->add_option("--baseline", a->baseline,
                  "compare with an earlier --json file: a table per case; exit 5 when a case "
                  "got slower beyond noise");
    c->add_option("--threshold", a->threshold,
                  "--baseline: the median ratio that counts, past the p10..p90 ranges (default "
                  "0.05: 5 %)");
    c->add_option("--csv", a->csv, "write the statistics as CSV");
    c->add_option("--trace", a->trace, "write a Chrome trace JSON (Perfetto, chrome://tracing)");
    c->add_option(
        "--hidden-layers", a->o.hiddenLayers,
        "GPU: also time the pipeline from this many hidden-state layers (default 12; 0: off)");
    c->add_option("--basic-max-n", a->o.basicMaxN,
                  "GPU: time basic kernels only up to this N (default: all)");
    c->add_option("--frames", a->frames,
                  "time the pipeline per frame of tokenized frames [F,N,D] (qmpp tokenize VIDEO)");
    c->add_option("--video", a->video,
                  "play a video through decode, tokenize and merge (loops the clip)");
    c->add_option("--play", a->play, "--video: frames to play (default 300)");
    c->add_option("--width", a->vo.width, "--video: resize frames to this width first");
    c->add_option("--patch", a->vo.patch, "--video: patch size P (default 16)");
    c->add_option("--tubelet", a->vo.tubelet, "--video: tubelets of T frames (default 1)");
    c->add_option("--precision", a->precision,
                  "--frames/--video/--model: fp32 | fp16 (default fp32)")
        ->check(CLI::IsMember({"fp32", "fp16"}));
    c->add_option("--model", a->model.model,
                  "time this ViT's forward, plain and with each method merging inside it");
    c->add_option("--batch", a->model.batch, "--model: images per batch (default 64)");
    c->add_option("--methods", a->model.methods,
                  "--model: none,quickmerge,tome,topk,random (default all)")
        ->delimiter(',');
    c->add_option("--r", a->model.r, "--model: tokens merged per block (default 8)");
    c->add_option("--heads", a->model.heads, "--model: heads, when the metadata lacks them");
    return [a] {
        if (!(a->threshold >= 0) || !std::isfinite(a->threshold))
            throw UsageError("--threshold must be a number >= 0");
        std::optional<BenchFile> baseline;
        if (!a->baseline.empty()) {
            if (!a->model.model.empty())
                throw UsageError("--baseline compares the kernel and pipeline bench, not --model");
            baseline = loadBenchFile(a->baseline); // a bad file stops before any work
        }
        if (!a->model.model.empty()) {
            BenchModelArgs m = a->model;
            m.json = a->json;
            m.backend = a->backend;
            m.precision = a->precision;
            if (a->o.repeats != BenchOptions{}.repeats) m.repeats = a->o.repeats;
            return static_cast<Exit>(benchModel(m));
        }
        if (a->o.repeats < 1) throw UsageError("--repeats must be at least 1");
        if (a->o.dim < 1) throw UsageError("--dim must be at least 1");
        for (i64 n : a->o.tokens)
            if (n < 1) throw UsageError("--tokens-list entries must be at least 1");
        for (int l : a->o.layers)
            if (l < 1 || l > 64) throw UsageError("--layers entries must lie in 1..64");
        parse(a->cluster, a->o.cluster);
        nlohmann::ordered_json j;
        j["tool"] = "qmpp bench";
        j["version"] = kVersion;
        j["backend"] = a->backend;
        std::vector<TimingStats> stats;
        if (!a->frames.empty() || !a->video.empty()) {
            if (!a->frames.empty() && !a->video.empty())
                throw UsageError("--frames and --video exclude each other");
            MergeParams p;
            p.budget = a->o.budget;
            p.cluster = a->o.cluster;
            p.layers = a->o.layers.size() == 1 ? a->o.layers[0] : 1;
            parse(a->backend, p.backend);
            parse(a->precision, p.precision);
            if (p.precision == Precision::FP16 && p.backend == BackendKind::Cpu)
                throw UsageError("--precision fp16 needs a CUDA backend");
            const bool repeatsGiven = a->o.repeats != BenchOptions{}.repeats;
            stats = !a->frames.empty()
                        ? benchFrames(a->frames, p, repeatsGiven ? a->o.repeats : 3, std::cout, j)
                        : benchVideo(a->video, a->vo, a->play, p, std::cout, j);
        } else if (a->backend == "cpu") {
            j["device"] = makeCpuBackend()->device();
            stats = benchCpu(a->o, std::cout);
        } else {
            std::string why;
            if (!gpuAvailable(&why))
                throw RuntimeFailure("bench --backend " + a->backend + ": " + why);
#ifdef QMPP_HAVE_CUDA
            if (a->o.tokens == BenchOptions{}.tokens) a->o.tokens = {196, 1024, 4096, 16384};
            a->o.repeats = std::max(a->o.repeats, 20);
            stats = benchCuda(a->o, a->backend == "cuda", std::cout, j);
#endif
        }
        // Each file is written beside its target and renamed into place: never half-written.
        auto save = [](const std::string& path, const std::string& text) {
            writeFileAtomic(path, std::vector<std::uint8_t>(text.begin(), text.end()));
            std::cout << "wrote " << path << "\n";
        };
        if (!a->json.empty()) {
            j["results"] = nlohmann::ordered_json::array();
            for (const auto& s : stats)
                j["results"].push_back(toJson(s));
            save(a->json, j.dump(2) + "\n");
        }
        if (!a->csv.empty()) save(a->csv, timingsCsv(stats));
        if (!a->trace.empty()) {
            const auto& dev =
                j.contains("device") ? j["device"] : nlohmann::ordered_json("unknown device");
            const std::string name = dev.is_object()   ? dev.value("name", std::string("GPU"))
                                     : dev.is_string() ? dev.get<std::string>()
                                                       : std::string("unknown device");
            save(a->trace, chromeTrace(stats, name).dump(1) + "\n");
        }
        for (const auto& s : stats)
            if (!s.verified) return kRuntime;
        if (baseline) {
            const auto changes = compareBench(*baseline, stats, a->threshold);
            std::cout << "against " << a->baseline << ":\n"
                      << benchChangeTable(changes, a->threshold);
            if (anySlower(changes)) return kSlower;
        }
        return kOk;
    };
}

} // namespace qmpp::cli
