// evaluateLm (lm.h): prefix compression measured on a text, window by window.
#include "qmpp/lm.h"

#include "qmpp/error.h"
#include "qmpp/evaluate.h"
#include "qmpp/io.h"
#include "qmpp/vitgpu.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace qmpp {

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v)
        s += x;
    return v.empty() ? 0.0 : s / double(v.size());
}

} // namespace

LmEvalRun evaluateLm(const LmModel& m, const std::vector<i64>& ids, i64 window,
                     const PrefixMerge& merge, const std::vector<std::uint64_t>& seeds,
                     LmGpu* gpu) {
    const LmConfig& c = config(m);
    const auto forward = [&](const std::vector<i64>& ids, const PrefixMerge& pm, i64 item) {
        return gpu ? gpu->forward(ids, pm, item) : lmForward(m, ids, pm, item);
    };
    if (window < 2 || window > c.context)
        throw UsageError("--window lies in 2.." + std::to_string(c.context));
    LmEvalRun run;
    run.window = window;
    run.prefix = merge.prefix;
    run.groups = merge.groups;
    run.words = i64(ids.size());
    run.unknownWords = i64(std::count(ids.begin(), ids.end(), i64(0)));
    std::vector<std::vector<i64>> wins;
    for (std::size_t s = 0; s < ids.size(); s += std::size_t(window)) {
        std::vector<i64> w(ids.begin() + s, ids.begin() + std::min(ids.size(), s + window));
        if (i64(w.size()) >= merge.prefix + 2) { // a scored position
            wins.push_back(std::move(w));
            run.windowStart.push_back(i64(s));
        }
    }
    if (wins.empty())
        throw InputError("the text has " + std::to_string(ids.size()) +
                         " words: a window needs "
                         "at least the prefix (" +
                         std::to_string(merge.prefix) + ") + 2");
    run.windows = i64(wins.size());
    // plain: the rows of the following tokens that have a next word
    std::vector<std::vector<float>> plainRows(wins.size());
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t w = 0; w < wins.size(); ++w) {
        const LmResult r = forward(wins[w], PrefixMerge{}, 0);
        if (w == 0) run.flopsPlain = r.flops;
        const i64 n = i64(wins[w].size());
        for (i64 p = merge.prefix; p + 1 < n; ++p) {
            run.nllPlain.push_back(r.nll[p]);
            run.scoredWord.push_back(run.windowStart[w] + p + 1);
            plainRows[w].insert(plainRows[w].end(), r.logits.begin() + p * c.vocab,
                                r.logits.begin() + (p + 1) * c.vocab);
        }
    }
    run.msPlain = msSince(t0) / double(wins.size());
    run.positions = i64(run.nllPlain.size());
    run.cePlain = mean(run.nllPlain);
    const std::vector<std::uint64_t> use = isRandom(merge.method) && !seeds.empty()
                                               ? seeds
                                               : std::vector<std::uint64_t>{merge.params.seed};
    t0 = std::chrono::steady_clock::now();
    for (std::uint64_t seed : use) {
        PrefixMerge pm = merge;
        pm.params.seed = seed;
        LmEvalSeed es;
        es.seed = seed;
        double kl = 0;
        i64 same = 0;
        for (std::size_t w = 0; w < wins.size(); ++w) {
            const LmResult r = forward(wins[w], pm, i64(w));
            if (w == 0) run.flopsMerged = r.flops;
            if (run.seeds.empty()) run.prefixGroups.push_back(r.groupOf);
            for (std::size_t q = 0; q < r.nll.size(); ++q) {
                es.nll.push_back(r.nll[q]);
                const float* a = &plainRows[w][q * c.vocab];
                const float* b = &r.logits[q * c.vocab];
                kl += klDivergence(a, b, c.vocab);
                same +=
                    std::max_element(a, a + c.vocab) - a == std::max_element(b, b + c.vocab) - b;
            }
        }
        es.ceMerged = mean(es.nll);
        es.agreement = double(same) / double(std::max<i64>(1, run.positions));
        es.klMean = kl / double(std::max<i64>(1, run.positions));
        run.seeds.push_back(std::move(es));
    }
    run.msMerged = msSince(t0) / double(wins.size() * use.size());
    if (gpu) {
        run.backend = "cuda";
        run.precision = gpu->precision();
        run.device = gpu->device();
    }
    return run;
}

std::string lmEvalJson(const LmEvalRun& run, const LmConfig& c, const PrefixMerge& merge,
                       const std::string& modelPath, const std::string& textPath) {
    nlohmann::ordered_json j;
    j["tool"] = "qmpp eval";
    j["version"] = QMPP_VERSION;
    j["created"] = isoTimeNow();
    j["model"] = {{"path", modelPath}, {"name", c.name},      {"kind", "causal-lm"},
                  {"depth", c.depth},  {"dim", c.dim},        {"heads", c.heads},
                  {"vocab", c.vocab},  {"context", c.context}};
    j["input"] = {{"text", textPath},
                  {"words", run.words},
                  {"unknown_words", run.unknownWords},
                  {"windows", run.windows},
                  {"window", run.window}};
    j["merge"] = {{"method", toString(merge.method)},
                  {"block", merge.block},
                  {"prefix", run.prefix},
                  {"groups", run.groups},
                  {"temperature", merge.params.temperature},
                  {"epsilon", merge.params.epsilon},
                  {"gumbel_scale", merge.params.gumbelScale},
                  {"refine", merge.params.refine}};
    j["rule"] = "the first T tokens become K groups at the block, in order; a group takes the "
                "position of its last member; later tokens attend to it with ln c";
    j["backend"] = run.backend;
    j["precision"] = run.precision;
    if (!run.device.empty()) j["device"] = run.device;
    j["positions"] = run.positions;
    j["ce_plain"] = run.cePlain;
    std::vector<double> ces;
    nlohmann::ordered_json per = nlohmann::ordered_json::array();
    for (const LmEvalSeed& s : run.seeds) {
        ces.push_back(s.ceMerged);
        per.push_back({{"seed", s.seed},
                       {"ce_merged", s.ceMerged},
                       {"ce_change", s.ceMerged - run.cePlain},
                       {"top1_agreement", s.agreement},
                       {"kl_mean", s.klMean}});
    }
    j["seeds"] = per;
    const double m = mean(ces);
    double var = 0;
    for (double v : ces)
        var += (v - m) * (v - m);
    const double sd = ces.size() > 1 ? std::sqrt(var / double(ces.size() - 1)) : 0.0;
    j["ce_merged_mean"] = m;
    j["ce_merged_std"] = sd;
    j["ce_change_mean"] = m - run.cePlain;
    j["perplexity_plain"] = std::exp(run.cePlain);
    j["perplexity_merged"] = std::exp(m);
    j["flops_per_window"] = {{"plain", run.flopsPlain}, {"merged", run.flopsMerged}};
    j["ms_per_window"] = {{"plain", run.msPlain}, {"merged", run.msMerged}};
    return j.dump(2) + "\n";
}

std::string lmMeasuresCsv(const LmEvalRun& run) {
    std::ostringstream s;
    s << std::setprecision(9);
    s << "seed,positions,ce_plain,ce_merged,ce_change,top1_agreement,kl_mean\n";
    for (const LmEvalSeed& e : run.seeds)
        s << e.seed << "," << run.positions << "," << run.cePlain << "," << e.ceMerged << ","
          << e.ceMerged - run.cePlain << "," << e.agreement << "," << e.klMean << "\n";
    return s.str();
}

} // namespace qmpp
