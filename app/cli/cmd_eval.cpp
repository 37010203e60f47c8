// qmpp eval --model M INPUT ... --out DIR: a ViT with and without merging inside it.
#include "commands.h"

#include "qmpp/error.h"
#include "qmpp/evalout.h"
#include "qmpp/evaluate.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/lm.h"
#include "qmpp/plotting.h"
#include "qmpp/report.h"
#include "qmpp/vitgpu.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace qmpp::cli {

namespace {

struct LmArgs {
    std::string model, text, out, method;
    i64 prefix = 0, groups = 0, window = 0, atBlock = 0;
    double budget = 0;
    HookParams hp;
    std::vector<std::uint64_t> seeds;
    bool force = false, gpu = false, fp16 = false;
};

// The language model on a text file: prefix compression, measured on the following tokens.
int evalLanguageModel(const LmArgs& a) {
    const auto model = loadLm(a.model);
    const LmConfig& c = config(*model);
    requireFile(a.text);
    constexpr std::uintmax_t kMaxText = 64u << 20; // the whole KJV is 4.4 MB
    if (std::filesystem::file_size(a.text) > kMaxText)
        throw InputError(a.text + ": " + std::to_string(std::filesystem::file_size(a.text)) +
                         " bytes; texts up to 64 MiB are read");
    const std::vector<std::uint8_t> bytes = readFileBytes(a.text);
    const std::string text(bytes.begin(), bytes.end());
    const std::vector<i64> ids = tokenizeLm(*model, text);
    if (ids.size() < 3)
        throw InputError(a.text + ": " + std::to_string(ids.size()) +
                         " words; the language model needs at least 3");
    PrefixMerge pm;
    if (!parse(a.method, pm.method) ||
        (pm.method != ModelMethod::QuickMerge && pm.method != ModelMethod::Random &&
         pm.method != ModelMethod::None))
        throw UsageError("--method " + a.method +
                         ": the language model takes quickmerge, random "
                         "or none");
    const i64 window = a.window ? a.window : c.context;
    if (window < 3 || window > c.context)
        throw UsageError("--window lies in 3.." + std::to_string(c.context));
    pm.prefix = a.prefix ? a.prefix : window / 2;
    if (pm.prefix < 1 || pm.prefix > window - 2)
        throw UsageError("--prefix lies in 1.." + std::to_string(window - 2) +
                         " (following tokens must remain)");
    if (a.groups && a.budget > 0) throw UsageError("give --groups or --budget, not both");
    pm.groups = a.groups ? a.groups
                         : std::max<i64>(1, static_cast<i64>(std::floor(
                                                (a.budget > 0 ? a.budget : 0.25) * pm.prefix)));
    if (pm.groups < 1 || pm.groups > pm.prefix)
        throw UsageError("--groups lies in 1..--prefix (" + std::to_string(pm.prefix) + ")");
    if (a.atBlock < 0 || a.atBlock >= c.depth)
        throw UsageError("--at-block lies in 0.." + std::to_string(c.depth - 1));
    pm.block = a.atBlock;
    pm.params = a.hp;
    if (i64(ids.size()) < pm.prefix + 2)
        throw InputError(a.text + ": " + std::to_string(ids.size()) +
                         " words; a window needs "
                         "the prefix (" +
                         std::to_string(pm.prefix) + ") and 2 more");
    PrefixMerge measured = pm;
    if (pm.method == ModelMethod::None) { // nothing merged: K = T reproduces the plain run
        measured.method = ModelMethod::QuickMerge;
        measured.groups = pm.prefix;
    }
    std::cerr << "qmpp eval: " << c.name << " (" << c.depth << " blocks, D " << c.dim << ", "
              << c.vocab << " words) on " << a.text << ": " << ids.size() << " words in windows of "
              << window << "; prefix " << pm.prefix << " -> " << pm.groups << " at block "
              << pm.block << ", method " << a.method << "\n";
    std::unique_ptr<LmGpu> gpu;
    if (a.gpu) gpu = std::make_unique<LmGpu>(model, a.fp16);
    const LmEvalRun run = evaluateLm(*model, ids, window, measured, a.seeds, gpu.get());
    OutputDir out(a.out, a.force);
    auto write = [&](const std::string& name, const std::string& body) {
        writeFileBytes(out.path(name), std::vector<std::uint8_t>(body.begin(), body.end()));
    };
    write("eval.json", lmEvalJson(run, c, pm, a.model, a.text));
    write("measures.csv", lmMeasuresCsv(run));
    std::vector<float> nllPlain(run.nllPlain.begin(), run.nllPlain.end()), nllMerged;
    for (const LmEvalSeed& e : run.seeds)
        nllMerged.insert(nllMerged.end(), e.nll.begin(), e.nll.end());
    writeNpy(out.path("nll_plain.npy"), NdArray::fromFloat(nllPlain, {run.positions}));
    writeNpy(out.path("nll_merged.npy"),
             NdArray::fromFloat(nllMerged, {i64(run.seeds.size()), run.positions}));
    out.commit();
    std::cout << std::fixed << std::setprecision(4);
    std::cout << "  " << run.windows << " window(s), " << run.positions
              << " following positions scored; unknown words " << run.unknownWords << " of "
              << run.words << "\n";
    std::cout << "  next-token cross-entropy, plain " << run.cePlain << " nats/word\n";
    for (const LmEvalSeed& e : run.seeds)
        std::cout << "  seed " << e.seed << ": merged " << e.ceMerged << " (change " << std::showpos
                  << e.ceMerged - run.cePlain << std::noshowpos << "), top-1 agreement "
                  << e.agreement << ", KL " << e.klMean << "\n";
    std::cout << std::setprecision(2) << "  GFLOPs per window: plain " << run.flopsPlain / 1e9
              << ", merged " << run.flopsMerged / 1e9 << "; ms per window: plain " << run.msPlain
              << ", merged " << run.msMerged << " ("
              << (run.device.empty() ? std::string("CPU") : run.device) << ", " << run.precision
              << ")\n";
    std::cout << "  outputs in " << a.out
              << ": eval.json measures.csv nll_plain.npy "
                 "nll_merged.npy\n";
    return kOk;
}

} // namespace

Runner addEval(CLI::App& app) {
    struct Args {
        std::string model, input, dataset, out, method = "quickmerge", r, schedule, list;
        std::string seeds = "0,1,2", backend = "cpu", precision = "fp32";
        double budget = 0;
        i64 atBlock = 0, heads = 0, limit = 0, batch = 64, prefix = 0, groups = 0, window = 0,
            overlays = 0;
        HookParams hp;
        bool force = false, sweep = false;
        std::vector<std::string> methods = {"quickmerge", "tome", "topk", "random"};
        std::vector<i64> rList = {2, 4, 8, 12, 16, 20};
        std::vector<double> budgets;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand(
        "eval", "A ViT with merging inside it against the same model without: agreement, KL, "
                "accuracy, tokens and FLOPs per block, time (eval.json, measures.csv, "
                "predictions.csv, logits_*.npy in DIR)");
    c->add_option("--model", a->model, "model file (.safetensors, timm names + metadata)")
        ->required();
    c->add_option("INPUT", a->input,
                  "an image, a folder of images (labels from subfolder names), or pixels .npy "
                  "[B,C,H,W] already normalized; for a language model, a text file");
    c->add_option("--prefix", a->prefix,
                  "language model: the prefix T compressed (default half the window)");
    c->add_option("--groups", a->groups,
                  "language model: the prefix becomes K groups (default --budget x T)");
    c->add_option("--window", a->window,
                  "language model: tokens per window (default the model's context)");
    c->add_option("--dataset", a->dataset,
                  "an IDX test set folder (t10k-images-idx3-ubyte.gz and its labels)");
    c->add_option("--out", a->out, "output folder (created; refused if it holds results)")
        ->required();
    c->add_option("--method", a->method,
                  "none | quickmerge | tome | topk | random (default quickmerge)")
        ->check(CLI::IsMember({"none", "quickmerge", "tome", "topk", "random"}));
    c->add_option("--r", a->r, "tokens merged per block (constant r)");
    c->add_option("--schedule", a->schedule, "ToMe's schedule r,inflection (e.g. 8,-0.5)");
    c->add_option("--list", a->list, "r per block, comma-separated (e.g. 0,0,32,32,16,16)");
    c->add_option("--budget", a->budget, "one-shot: keep this share of the tokens at --at-block");
    c->add_option("--at-block", a->atBlock, "the block of --budget (default 0)");
    c->add_option("--heads", a->heads, "attention heads, when the file's metadata lacks them")
        ->check(atLeast(1, "--heads"));
    c->add_option("--temperature", a->hp.temperature, "QuickMerge++ tau (default 0.1)");
    c->add_option("--epsilon", a->hp.epsilon, "QuickMerge++ background weight (default 0.01)");
    c->add_option("--gumbel-scale", a->hp.gumbelScale,
                  "Gumbel noise x G (default 1, the seed's method; 0: deterministic)");
    c->add_option("--refine", a->hp.refine, "QuickMerge++ refinement rounds (default 3)");
    c->add_option("--seeds", a->seeds, "seeds of the random methods (default 0,1,2)");
    c->add_option("--limit", a->limit, "the first N items only")->check(atLeast(1, "--limit"));
    c->add_option("--overlays", a->overlays,
                  "ViT: overlays.json and overlays/*.png (sources, saliency, class attention, "
                  "rollout at the last block) for the first N items, at most 64")
        ->check(CLI::Range(i64(0), i64(64)));
    c->add_option("--backend", a->backend,
                  "cpu (default) | cuda | auto (cuda when a device is there, else cpu)")
        ->check(CLI::IsMember({"cpu", "auto", "cuda"}));
    c->add_option("--precision", a->precision, "fp32 (default) | fp16 (cuda only)")
        ->check(CLI::IsMember({"fp32", "fp16"}));
    c->add_option("--batch", a->batch, "cuda: images per forward (default 64)")
        ->check(atLeast(1, "--batch"));
    c->add_flag("--force", a->force, "replace results already in DIR");
    c->add_flag("--sweep", a->sweep,
                "every --methods at every --r-list value (or --budgets at --at-block): sweep.csv, "
                "sweep.json, sweep.png");
    c->add_option("--methods", a->methods, "--sweep: methods (default quickmerge,tome,topk,random)")
        ->delimiter(',')
        ->check(CLI::IsMember({"quickmerge", "tome", "topk", "random"}));
    c->add_option("--r-list", a->rList, "--sweep: r per block values (default 2,4,8,12,16,20)")
        ->delimiter(',');
    c->add_option("--budgets", a->budgets, "--sweep: one-shot budgets at --at-block instead of r")
        ->delimiter(',');
    return [a] {
        if (isLanguageModel(a->model)) {
            if (a->input.empty() || !a->dataset.empty())
                throw UsageError("a language model reads a text file: give INPUT");
            if (a->sweep || !a->r.empty() || !a->schedule.empty() || !a->list.empty() ||
                a->overlays)
                throw UsageError("the language model takes --prefix, --groups or --budget and "
                                 "--at-block (not --r, --schedule, --list, --sweep or "
                                 "--overlays)");
            std::string why;
            const bool haveGpu = gpuForwardAvailable(&why);
            if (a->backend == "cuda" && !haveGpu)
                throw RuntimeFailure("eval --backend cuda: " + why);
            const bool gpu = a->backend == "cuda" || (a->backend == "auto" && haveGpu);
            if (a->precision == "fp16" && !gpu)
                throw UsageError("--precision fp16 needs --backend cuda; the CPU forward runs "
                                 "fp32");
            OutputDir::checkTarget(a->out, a->force);
            LmArgs l;
            l.model = a->model;
            l.text = a->input;
            l.out = a->out;
            l.method = a->method;
            l.prefix = a->prefix;
            l.groups = a->groups;
            l.window = a->window;
            l.atBlock = a->atBlock;
            l.budget = a->budget;
            l.hp = a->hp;
            l.seeds = parseSeeds(a->seeds);
            l.force = a->force;
            l.gpu = gpu;
            l.fp16 = a->precision == "fp16";
            return static_cast<Exit>(evalLanguageModel(l));
        }
        if (a->input.empty() == a->dataset.empty())
            throw UsageError("give INPUT (an image, a folder or pixels .npy) or --dataset DIR, "
                             "not both");
        std::string why;
        const bool haveGpu = gpuForwardAvailable(&why);
        if (a->backend == "cuda" && !haveGpu) throw RuntimeFailure("eval --backend cuda: " + why);
        const bool gpu = a->backend == "cuda" || (a->backend == "auto" && haveGpu);
        if (a->precision == "fp16" && !gpu)
            throw UsageError("--precision fp16 needs --backend cuda; the CPU forward runs fp32");
        HookParams hp = a->hp;
        parse(a->method, hp.method);
        validate(hp);
        const std::vector<std::uint64_t> seeds = parseSeeds(a->seeds);
        OutputDir::checkTarget(a->out, a->force);
        const auto model = loadVit(a->model, a->heads);
        const VitConfig& cfg = config(*model);
        std::unique_ptr<VitGpu> vg;
        EvalDevice dev;
        if (gpu) {
            vg = std::make_unique<VitGpu>(model, a->precision == "fp16");
            dev.gpu = vg.get();
            dev.batch = a->batch;
        }
        if (a->sweep) {
            if (a->overlays)
                throw UsageError("--overlays draws one evaluation's items, not a --sweep");
            if (!a->r.empty() || !a->schedule.empty() || !a->list.empty() || a->budget > 0)
                throw UsageError("--sweep takes --r-list or --budgets, not --r, --schedule, "
                                 "--list or --budget");
            for (double b : a->budgets)
                if (!(b > 0 && b <= 1)) throw UsageError("--budgets: each lies in (0, 1]");
            for (i64 r : a->rList)
                if (r < 0) throw UsageError("--r-list: each r is at least 0");
            if (a->atBlock < 0 || a->atBlock >= cfg.depth)
                throw UsageError("--at-block lies in 0.." + std::to_string(cfg.depth - 1));
        } else {
            hp.schedule =
                scheduleFrom(a->r, a->schedule, a->list, a->budget, a->atBlock, cfg.depth);
        }
        if (!a->sweep && hp.method != ModelMethod::None && hp.schedule.kind == Schedule::Kind::None)
            throw UsageError("--method " + a->method +
                             " needs how much to merge: --r, --schedule, --list or --budget");
        const bool dataset = !a->dataset.empty();
        const EvalItems items =
            loadEvalItems(dataset ? a->dataset : a->input, cfg, dataset, a->limit);
        if (a->sweep) {
            const bool byBudget = !a->budgets.empty();
            const std::size_t settings = byBudget ? a->budgets.size() : a->rList.size();
            std::vector<SweepPoint> pts;
            std::cerr << "qmpp eval --sweep: " << a->methods.size() << " method(s) x " << settings
                      << " setting(s) on " << items.count << " item(s)\n";
            for (const std::string& name : a->methods)
                for (std::size_t k = 0; k < settings; ++k) {
                    HookParams h = hp;
                    parse(name, h.method);
                    h.schedule = byBudget ? budgetSchedule(a->budgets[k], a->atBlock)
                                          : constantSchedule(a->rList[k]);
                    SweepPoint p;
                    p.method = name;
                    p.setting = byBudget ? a->budgets[k] : double(a->rList[k]);
                    p.run = evaluate(*model, items, h, seeds, {},
                                     pts.empty() ? nullptr : &pts[0].run, dev);
                    std::cerr << "  " << name << " " << h.schedule.describe() << ": agreement "
                              << p.run.measures[0].agreement.value << ", FLOPs "
                              << std::setprecision(3) << p.run.flopsMerged / p.run.flopsPlain
                              << std::setprecision(6) << "\n";
                    pts.push_back(std::move(p));
                }
            OutputDir out(a->out, a->force);
            writeSweepFiles(out.tempDir(), pts, byBudget, items.hasLabels());
            out.commit();
            std::cout << "  outputs in " << a->out << ": sweep.csv sweep.json"
                      << (haveImageSupport() ? " sweep.png" : "") << "\n";
            return kOk;
        }
        std::cerr << "qmpp eval: " << cfg.name << " (" << cfg.depth << " blocks, D " << cfg.dim
                  << ", " << cfg.patches << " patches) on " << items.count << " item(s), method "
                  << toString(hp.method) << " " << hp.schedule.describe() << "\n";
        const bool tty = isatty(2);
        auto last = std::chrono::steady_clock::now();
        const EvalRun run = evaluate(
            *model, items, hp, seeds,
            [&](i64 done, i64 total) {
                const auto now = std::chrono::steady_clock::now();
                if (items.count > 1 && now - last > std::chrono::milliseconds(tty ? 500 : 5000)) {
                    last = now;
                    std::cerr << (tty ? "\r" : "") << "  forward passes " << done << " / " << total
                              << (tty ? "" : "\n") << std::flush;
                }
                return true;
            },
            nullptr, dev);
        if (items.count > 1)
            std::cerr << (tty ? "\r" : "") << "  forward passes "
                      << items.count * (1 + run.seeds.size()) << " / "
                      << items.count * (1 + run.seeds.size()) << "\n";

        OutputDir out(a->out, a->force);
        writeEvalFiles(out.tempDir(), run, cfg, items, hp, a->model);
        std::vector<std::string> pictures;
        if (a->overlays > 0)
            pictures = writeEvalOverlays(out.tempDir(), *model, items, hp, a->overlays);
        out.commit();

        std::cout << std::fixed << std::setprecision(4);
        std::cout << "  tokens per block:";
        for (const BlockStat& b : run.blocks)
            std::cout << " " << b.tokensOut;
        std::cout << "  (class token included)\n";
        std::cout << "  GFLOPs per image: plain " << run.flopsPlain / 1e9 << ", merged "
                  << run.flopsMerged / 1e9 << " (" << std::setprecision(1)
                  << 100.0 * run.flopsMerged / run.flopsPlain << " %)\n"
                  << std::setprecision(4);
        for (std::size_t s = 0; s < run.measures.size(); ++s) {
            const EvalMeasures& m = run.measures[s];
            std::cout << "  seed " << run.seeds[s] << ": agreement " << m.agreement.value << " ["
                      << m.agreement.lo << ", " << m.agreement.hi << "], KL " << m.klMean
                      << ", max logit change " << m.maxLogitChange;
            if (m.accuracyPlain.total > 0)
                std::cout << ", accuracy " << m.accuracyPlain.value << " -> "
                          << m.accuracyMerged.value;
            std::cout << "\n";
        }
        std::cout << std::setprecision(2) << "  ms per image: plain " << run.msPlain << ", merged "
                  << run.msMerged;
        if (gpu)
            std::cout << " (" << run.device << ", " << run.precision << ", batches of " << a->batch
                      << ")\n";
        else
            std::cout << " (" << run.threads << " thread(s), items in parallel)\n";
        std::cout << "  outputs in " << a->out
                  << ": eval.json measures.csv predictions.csv logits_plain.npy "
                     "logits_merged.npy"
                  << (pictures.empty() ? "" : " overlays.json")
                  << (pictures.size() > 1 ? " overlays/" : "") << "\n";
        return kOk;
    };
}

} // namespace qmpp::cli
