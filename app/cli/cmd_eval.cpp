// qmpp eval --model M INPUT ... --out DIR: a ViT with and without merging inside it.
#include "commands.h"

#include "qmpp/error.h"
#include "qmpp/evaluate.h"
#include "qmpp/io.h"
#include "qmpp/report.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace qmpp::cli {

namespace {

std::vector<std::uint64_t> parseSeeds(const std::string& s) {
    std::vector<std::uint64_t> out;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, ',')) {
        if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
            part.size() > 19)
            throw UsageError("--seeds takes comma-separated whole numbers, got '" + s + "'");
        out.push_back(std::stoull(part));
    }
    if (out.empty()) throw UsageError("--seeds needs at least one seed");
    return out;
}

Schedule scheduleFrom(const std::string& r, const std::string& sched, const std::string& list,
                      double budget, i64 atBlock, i64 depth) {
    const int given = !r.empty() + !sched.empty() + !list.empty() + (budget > 0);
    if (given > 1) throw UsageError("give one of --r, --schedule, --list and --budget");
    auto whole = [](const std::string& v, const char* opt) {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9)
            throw UsageError(std::string(opt) + " takes whole numbers >= 0, got '" + v + "'");
        return static_cast<i64>(std::stoll(v));
    };
    if (!r.empty()) return constantSchedule(whole(r, "--r"));
    if (!sched.empty()) {
        const auto comma = sched.find(',');
        if (comma == std::string::npos)
            throw UsageError("--schedule takes r,inflection (ToMe's schedule), e.g. 8,-0.5");
        double infl = 0;
        try {
            std::size_t used = 0;
            infl = std::stod(sched.substr(comma + 1), &used);
            if (used != sched.size() - comma - 1) throw std::invalid_argument("tail");
        } catch (const std::exception&) {
            throw UsageError("--schedule: the inflection must be a number, got '" + sched + "'");
        }
        if (!std::isfinite(infl) || infl < -1 || infl > 1)
            throw UsageError("--schedule: the inflection lies in [-1, 1]");
        return inflectSchedule(whole(sched.substr(0, comma), "--schedule"), infl);
    }
    if (!list.empty()) {
        std::vector<i64> v;
        std::stringstream in(list);
        std::string part;
        while (std::getline(in, part, ','))
            v.push_back(whole(part, "--list"));
        if (i64(v.size()) > depth)
            throw UsageError("--list gives " + std::to_string(v.size()) +
                             " values for a model of " + std::to_string(depth) + " blocks");
        return listSchedule(v);
    }
    if (budget > 0) {
        if (budget > 1) throw UsageError("--budget lies in (0, 1]");
        if (atBlock < 0 || atBlock >= depth)
            throw UsageError("--at-block lies in 0.." + std::to_string(depth - 1));
        return budgetSchedule(budget, atBlock);
    }
    return Schedule{};
}

} // namespace

Runner addEval(CLI::App& app) {
    struct Args {
        std::string model, input, dataset, out, method = "quickmerge", r, schedule, list;
        std::string seeds = "0,1,2", backend = "cpu", precision = "fp32";
        double budget = 0;
        i64 atBlock = 0, heads = 0, limit = 0;
        HookParams hp;
        bool force = false;
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
                  "[B,C,H,W] already normalized");
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
    c->add_option("--backend", a->backend, "cpu (default; the GPU forward is not built yet)")
        ->check(CLI::IsMember({"cpu", "auto", "cuda"}));
    c->add_option("--precision", a->precision, "fp32 (default)")
        ->check(CLI::IsMember({"fp32", "fp16"}));
    c->add_flag("--force", a->force, "replace results already in DIR");
    return [a] {
        if (a->input.empty() == a->dataset.empty())
            throw UsageError("give INPUT (an image, a folder or pixels .npy) or --dataset DIR, "
                             "not both");
        if (a->backend == "cuda")
            throw UsageError("--backend cuda: the model's GPU forward is not in this version; "
                             "use --backend cpu");
        if (a->precision == "fp16")
            throw UsageError("--precision fp16 needs the GPU forward; the CPU runs fp32");
        HookParams hp = a->hp;
        parse(a->method, hp.method);
        if (!(hp.temperature > 0) || !std::isfinite(hp.temperature))
            throw UsageError("--temperature must be positive");
        if (!(hp.epsilon >= 0 && hp.epsilon <= 1)) throw UsageError("--epsilon lies in [0, 1]");
        if (!(hp.gumbelScale >= 0) || !std::isfinite(hp.gumbelScale))
            throw UsageError("--gumbel-scale must be >= 0");
        if (hp.refine < 0 || hp.refine > 100) throw UsageError("--refine lies in 0..100");
        const std::vector<std::uint64_t> seeds = parseSeeds(a->seeds);
        OutputDir::checkTarget(a->out, a->force);
        const auto model = loadVit(a->model, a->heads);
        const VitConfig& cfg = config(*model);
        hp.schedule = scheduleFrom(a->r, a->schedule, a->list, a->budget, a->atBlock, cfg.depth);
        if (hp.method != ModelMethod::None && hp.schedule.kind == Schedule::Kind::None)
            throw UsageError("--method " + a->method +
                             " needs how much to merge: --r, --schedule, --list or --budget");
        const bool dataset = !a->dataset.empty();
        const EvalItems items =
            loadEvalItems(dataset ? a->dataset : a->input, cfg, dataset, a->limit);
        std::cerr << "qmpp eval: " << cfg.name << " (" << cfg.depth << " blocks, D " << cfg.dim
                  << ", " << cfg.patches << " patches) on " << items.count << " item(s), method "
                  << toString(hp.method) << " " << hp.schedule.describe() << "\n";
        const bool tty = isatty(2);
        auto last = std::chrono::steady_clock::now();
        const EvalRun run = evaluate(*model, items, hp, seeds, [&](i64 done, i64 total) {
            const auto now = std::chrono::steady_clock::now();
            if (items.count > 1 && now - last > std::chrono::milliseconds(tty ? 500 : 5000)) {
                last = now;
                std::cerr << (tty ? "\r" : "") << "  forward passes " << done << " / " << total
                          << (tty ? "" : "\n") << std::flush;
            }
            return true;
        });
        if (items.count > 1)
            std::cerr << (tty ? "\r" : "") << "  forward passes "
                      << items.count * (1 + run.seeds.size()) << " / "
                      << items.count * (1 + run.seeds.size()) << "\n";

        OutputDir out(a->out, a->force);
        auto write = [&](const std::string& name, const std::string& text) {
            writeFileBytes(out.path(name), std::vector<std::uint8_t>(text.begin(), text.end()));
        };
        writeNpy(out.path("logits_plain.npy"),
                 NdArray::fromFloat(run.plainLogits, {items.count, cfg.classes}));
        std::vector<float> merged;
        for (const auto& l : run.mergedLogits)
            merged.insert(merged.end(), l.begin(), l.end());
        writeNpy(
            out.path("logits_merged.npy"),
            NdArray::fromFloat(merged, {i64(run.mergedLogits.size()), items.count, cfg.classes}));
        write("eval.json", evalJson(run, cfg, items, hp, a->model));
        write("measures.csv", measuresCsv(run));
        write("predictions.csv", predictionsCsv(run, cfg, items));
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
                  << run.msMerged << " (" << run.threads << " thread(s), items in parallel)\n";
        std::cout << "  outputs in " << a->out
                  << ": eval.json measures.csv predictions.csv logits_plain.npy "
                     "logits_merged.npy\n";
        return kOk;
    };
}

} // namespace qmpp::cli
