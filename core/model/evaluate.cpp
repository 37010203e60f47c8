// evaluate (evaluate.h): plain against merged, measured.
#include "qmpp/evaluate.h"
#include "qmpp/vitgpu.h"

#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>

namespace qmpp {

SeedSummary overSeeds(const EvalRun& run, EvalMeasure m) {
    SeedSummary out;
    if (run.measures.empty()) return out;
    out.lo = 1e300;
    out.hi = -1e300;
    for (const EvalMeasures& e : run.measures) {
        const Proportion& p = m == EvalMeasure::Agreement ? e.agreement : e.accuracyMerged;
        const double v = m == EvalMeasure::Kl ? e.klMean : p.value;
        out.value += v / double(run.measures.size());
        out.lo = std::min(out.lo, m == EvalMeasure::Kl ? e.klLo : p.lo);
        out.hi = std::max(out.hi, m == EvalMeasure::Kl ? e.klHi : p.hi);
    }
    return out;
}

Proportion wilson(i64 hits, i64 total) {
    Proportion p;
    p.hits = hits;
    p.total = total;
    if (total <= 0) return p;
    const double n = double(total), z = 1.959963984540054, ph = double(hits) / n;
    const double den = 1 + z * z / n;
    const double centre = (ph + z * z / (2 * n)) / den;
    const double half = z * std::sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den;
    p.value = ph;
    p.lo = std::max(0.0, centre - half);
    p.hi = std::min(1.0, centre + half);
    return p;
}

double klDivergence(const float* a, const float* b, i64 classes) {
    auto logSoftmax = [classes](const float* z, std::vector<double>& out) {
        double mx = z[0];
        for (i64 i = 1; i < classes; ++i)
            mx = std::max(mx, double(z[i]));
        double s = 0;
        for (i64 i = 0; i < classes; ++i)
            s += std::exp(double(z[i]) - mx);
        const double lse = mx + std::log(s);
        out.resize(static_cast<std::size_t>(classes));
        for (i64 i = 0; i < classes; ++i)
            out[i] = double(z[i]) - lse;
    };
    std::vector<double> la, lb;
    logSoftmax(a, la);
    logSoftmax(b, lb);
    double kl = 0;
    for (i64 i = 0; i < classes; ++i)
        kl += std::exp(la[i]) * (la[i] - lb[i]);
    return std::max(0.0, kl);
}

EvalMeasures measure(const float* plain, const float* merged, const std::vector<i64>& labels,
                     i64 count, i64 classes) {
    EvalMeasures m;
    i64 agree = 0, labelled = 0, rightPlain = 0, rightMerged = 0;
    double klSum = 0, klSum2 = 0;
    for (i64 i = 0; i < count; ++i) {
        const float* a = plain + i * classes;
        const float* b = merged + i * classes;
        const i64 pa = std::max_element(a, a + classes) - a;
        const i64 pb = std::max_element(b, b + classes) - b;
        agree += pa == pb;
        const double kl = klDivergence(a, b, classes);
        klSum += kl;
        klSum2 += kl * kl;
        for (i64 c = 0; c < classes; ++c)
            m.maxLogitChange = std::max(m.maxLogitChange, double(std::fabs(a[c] - b[c])));
        if (i < i64(labels.size()) && labels[i] >= 0) {
            ++labelled;
            rightPlain += pa == labels[i];
            rightMerged += pb == labels[i];
        }
    }
    m.agreement = wilson(agree, count);
    if (count > 0) {
        m.klMean = klSum / count;
        const double var =
            count > 1 ? std::max(0.0, (klSum2 - klSum * klSum / count) / (count - 1)) : 0.0;
        const double half = 1.959963984540054 * std::sqrt(var / count);
        m.klLo = std::max(0.0, m.klMean - half);
        m.klHi = m.klMean + half;
    }
    m.accuracyPlain = wilson(rightPlain, labelled);
    m.accuracyMerged = wilson(rightMerged, labelled);
    return m;
}

namespace {

// Every item through the model with `hp` (its own Gumbel offsets), in parallel, one thread each.
double runAll(const VitModel& m, const EvalItems& items, const HookParams& hp,
              std::vector<float>& logits, std::vector<BlockStat>& blocks, double& flops,
              std::atomic<i64>& done, i64 total, const Progress& progress, const EvalDevice& dev) {
    const VitConfig& c = config(m);
    const i64 px = c.channels * c.imageSize * c.imageSize;
    logits.assign(static_cast<std::size_t>(items.count * c.classes), 0.0f);
    if (dev.gpu) { // batches on the device, in item order
        const auto t0 = std::chrono::steady_clock::now();
        const i64 step = std::max<i64>(1, dev.batch);
        for (i64 i0 = 0; i0 < items.count; i0 += step) {
            const i64 nb = std::min(step, items.count - i0);
            const std::vector<ForwardResult> rs =
                dev.gpu->forward(items.pixels.data() + i0 * px, nb, hp, i0);
            for (i64 b = 0; b < nb; ++b)
                std::copy(rs[b].logits.begin(), rs[b].logits.end(),
                          logits.begin() + (i0 + b) * c.classes);
            if (i0 == 0) {
                blocks = rs[0].blocks;
                flops = rs[0].flops;
            }
            done += nb;
            if (progress && !progress(done.load(), total)) throw Cancelled();
        }
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
            .count();
    }
    std::atomic<bool> stop{false};
    ForwardOptions one;
    one.threads = 1;
    const auto t0 = std::chrono::steady_clock::now();
    par::useThreadsFor(items.count > 1 ? 1e12 : 0.0);
    // nothing may leave the parallel region: the engine's loops throw Cancelled on a thread
    // whose stop flag is set (a superseded or cancelled job), and the first error is kept
    std::exception_ptr error;
    std::mutex errorLock;
#pragma omp parallel for schedule(dynamic, 1)
    for (i64 i = 0; i < items.count; ++i) {
        if (stop.load()) continue;
        try {
            const ForwardResult r = vitForward(m, items.pixels.data() + i * px, hp, i, one);
            std::copy(r.logits.begin(), r.logits.end(), logits.begin() + i * c.classes);
            if (i == 0) {
                blocks = r.blocks;
                flops = r.flops;
            }
            const i64 now = ++done;
            if (progress && par::threadId() == 0 && !progress(now, total)) stop = true;
        } catch (const Cancelled&) {
            stop = true;
        } catch (...) {
            const std::lock_guard<std::mutex> lock(errorLock);
            if (!error) error = std::current_exception();
            stop = true;
        }
    }
    if (error) std::rethrow_exception(error);
    if (stop) throw Cancelled();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

double forwardAll(const VitModel& m, const EvalItems& items, const HookParams& hp,
                  std::vector<float>& logits, const EvalDevice& dev) {
    std::vector<BlockStat> blocks;
    double flops = 0;
    std::atomic<i64> done{0};
    return runAll(m, items, hp, logits, blocks, flops, done, items.count, {}, dev);
}

EvalRun evaluate(const VitModel& m, const EvalItems& items, const HookParams& hp,
                 std::vector<std::uint64_t> seeds, const Progress& progress, const EvalRun* plain,
                 const EvalDevice& dev) {
    const VitConfig& c = config(m);
    EvalRun run;
    if (!isRandom(hp.method) || seeds.empty()) seeds.assign(1, hp.seed);
    run.seeds = seeds;
    const i64 total = items.count * i64((plain ? 0 : 1) + seeds.size());
    std::atomic<i64> done{0};
    if (plain) {
        run.plainLogits = plain->plainLogits;
        run.plainBlocks = plain->plainBlocks;
        run.flopsPlain = plain->flopsPlain;
        run.msPlain = plain->msPlain;
    } else {
        const double ms = runAll(m, items, HookParams{}, run.plainLogits, run.plainBlocks,
                                 run.flopsPlain, done, total, progress, dev);
        run.msPlain = ms / std::max<i64>(1, items.count);
    }
    double msMerged = 0;
    for (std::uint64_t seed : seeds) {
        HookParams h = hp;
        h.seed = seed;
        std::vector<float> logits;
        std::vector<BlockStat> blocks;
        double flops = 0;
        msMerged += runAll(m, items, h, logits, blocks, flops, done, total, progress, dev);
        if (run.blocks.empty()) {
            run.blocks = blocks;
            run.flopsMerged = flops;
        }
        run.measures.push_back(
            measure(run.plainLogits.data(), logits.data(), items.labels, items.count, c.classes));
        run.mergedLogits.push_back(std::move(logits));
    }
    run.msMerged = msMerged / double(seeds.size()) / std::max<i64>(1, items.count);
    run.threads = dev.gpu ? 1 : par::maxThreads();
    if (dev.gpu) {
        run.backend = "cuda";
        run.precision = dev.gpu->precision();
        run.device = dev.gpu->device();
    }
    return run;
}

} // namespace qmpp

#include "qmpp/io.h"
#include <nlohmann/json.hpp>

#include <iomanip>
#include <sstream>

namespace qmpp {

namespace {

nlohmann::ordered_json propJson(const Proportion& p) {
    nlohmann::ordered_json j;
    j["value"] = p.value;
    j["ci95"] = {p.lo, p.hi};
    j["hits"] = p.hits;
    j["total"] = p.total;
    return j;
}

nlohmann::ordered_json blocksJson(const std::vector<BlockStat>& blocks) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (std::size_t l = 0; l < blocks.size(); ++l)
        a.push_back({{"block", l},
                     {"tokens_in", blocks[l].tokensIn},
                     {"tokens_out", blocks[l].tokensOut},
                     {"flops", blocks[l].flops}});
    return a;
}

double meanOf(const std::vector<double>& v) {
    double s = 0;
    for (double x : v)
        s += x;
    return v.empty() ? 0 : s / double(v.size());
}

double sdOf(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = meanOf(v);
    double s = 0;
    for (double x : v)
        s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
}

std::vector<float> softmaxOf(const float* z, i64 n) {
    std::vector<float> p(z, z + n);
    const float mx = *std::max_element(p.begin(), p.end());
    double s = 0;
    for (float& v : p)
        s += (v = std::exp(v - mx));
    for (float& v : p)
        v = static_cast<float>(v / s);
    return p;
}

} // namespace

std::string evalJson(const EvalRun& run, const VitConfig& c, const EvalItems& items,
                     const HookParams& hp, const std::string& modelPath) {
    nlohmann::ordered_json j;
    j["tool"] = "qmpp eval";
    j["version"] = QMPP_VERSION;
    j["created"] = isoTimeNow();
    j["model"] = {{"path", modelPath},         {"name", c.name},
                  {"image_size", c.imageSize}, {"patch", c.patch},
                  {"channels", c.channels},    {"dim", c.dim},
                  {"depth", c.depth},          {"heads", c.heads},
                  {"classes", c.classes},      {"weights_dtype", c.weightsDtype}};
    j["input"] = {
        {"source", items.source}, {"items", items.count}, {"labelled", items.hasLabels()}};
    j["method"] = toString(hp.method);
    j["schedule"] = hp.schedule.describe();
    j["parameters"] = {{"temperature", hp.temperature},
                       {"epsilon", hp.epsilon},
                       {"gumbel_scale", hp.gumbelScale},
                       {"refine", hp.refine}};
    j["backend"] = run.backend;
    j["precision"] = run.precision;
    if (!run.device.empty()) j["device"] = run.device;
    j["seeds"] = run.seeds;
    j["tokens"] = {{"plain", blocksJson(run.plainBlocks)}, {"merged", blocksJson(run.blocks)}};
    j["flops"] = {{"plain", run.flopsPlain},
                  {"merged", run.flopsMerged},
                  {"ratio", run.flopsPlain > 0 ? run.flopsMerged / run.flopsPlain : 0.0}};
    nlohmann::ordered_json per = nlohmann::ordered_json::array();
    std::vector<double> agree, kl, accM, maxChange;
    for (std::size_t s = 0; s < run.measures.size(); ++s) {
        const EvalMeasures& m = run.measures[s];
        nlohmann::ordered_json e;
        e["seed"] = run.seeds[s];
        e["agreement"] = propJson(m.agreement);
        e["kl"] = {{"mean", m.klMean}, {"ci95", {m.klLo, m.klHi}}};
        e["max_logit_change"] = m.maxLogitChange;
        if (m.accuracyPlain.total > 0) {
            e["accuracy_plain"] = propJson(m.accuracyPlain);
            e["accuracy_merged"] = propJson(m.accuracyMerged);
        }
        per.push_back(e);
        agree.push_back(m.agreement.value);
        kl.push_back(m.klMean);
        accM.push_back(m.accuracyMerged.value);
        maxChange.push_back(m.maxLogitChange);
    }
    j["per_seed"] = per;
    auto spread = [](const std::vector<double>& v) {
        return nlohmann::ordered_json{{"mean", meanOf(v)},
                                      {"sd", sdOf(v)},
                                      {"min", *std::min_element(v.begin(), v.end())},
                                      {"max", *std::max_element(v.begin(), v.end())}};
    };
    nlohmann::ordered_json sum;
    sum["seeds"] = run.seeds.size();
    sum["agreement"] = spread(agree);
    sum["kl"] = spread(kl);
    sum["max_logit_change"] = spread(maxChange);
    if (!run.measures.empty() && run.measures[0].accuracyPlain.total > 0) {
        sum["accuracy_plain"] = run.measures[0].accuracyPlain.value;
        sum["accuracy_merged"] = spread(accM);
    }
    j["summary"] = sum;
    j["time"] = {{"plain_ms_per_image", run.msPlain},
                 {"merged_ms_per_image", run.msMerged},
                 {"threads", run.threads},
                 {"note", "items run in parallel, one thread each"}};
    return j.dump(2) + "\n";
}

std::string measuresCsv(const EvalRun& run) {
    std::ostringstream s;
    s << std::setprecision(9);
    s << "seed,items,agreement,agreement_lo,agreement_hi,kl_mean,kl_lo,kl_hi,max_logit_change,"
         "accuracy_plain,accuracy_merged,accuracy_merged_lo,accuracy_merged_hi,flops_plain,"
         "flops_merged\n";
    for (std::size_t i = 0; i < run.measures.size(); ++i) {
        const EvalMeasures& m = run.measures[i];
        const bool lab = m.accuracyPlain.total > 0;
        s << run.seeds[i] << "," << m.agreement.total << "," << m.agreement.value << ","
          << m.agreement.lo << "," << m.agreement.hi << "," << m.klMean << "," << m.klLo << ","
          << m.klHi << "," << m.maxLogitChange << ",";
        if (lab)
            s << m.accuracyPlain.value << "," << m.accuracyMerged.value << ","
              << m.accuracyMerged.lo << "," << m.accuracyMerged.hi;
        else
            s << ",,,";
        s << "," << run.flopsPlain << "," << run.flopsMerged << "\n";
    }
    return s.str();
}

std::string predictionsCsv(const EvalRun& run, const VitConfig& c, const EvalItems& items) {
    std::ostringstream s;
    s << std::setprecision(6);
    s << "item,name,label,plain_class,plain_prob";
    for (std::uint64_t seed : run.seeds)
        s << ",merged_class_seed" << seed << ",merged_prob_seed" << seed << ",kl_seed" << seed;
    s << "\n";
    auto quoted = [](const std::string& v) {
        std::string q = "\"";
        for (char ch : v)
            q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        return q + "\"";
    };
    for (i64 i = 0; i < items.count; ++i) {
        const float* a = run.plainLogits.data() + i * c.classes;
        const std::vector<float> pa = softmaxOf(a, c.classes);
        const i64 ca = std::max_element(pa.begin(), pa.end()) - pa.begin();
        s << i << "," << quoted(items.names[i]) << ","
          << (items.labels[i] >= 0 ? quoted(c.classNames[items.labels[i]]) : std::string()) << ","
          << quoted(c.classNames[ca]) << "," << pa[ca];
        for (std::size_t k = 0; k < run.seeds.size(); ++k) {
            const float* b = run.mergedLogits[k].data() + i * c.classes;
            const std::vector<float> pb = softmaxOf(b, c.classes);
            const i64 cb = std::max_element(pb.begin(), pb.end()) - pb.begin();
            s << "," << quoted(c.classNames[cb]) << "," << pb[cb] << ","
              << klDivergence(a, b, c.classes);
        }
        s << "\n";
    }
    return s.str();
}

} // namespace qmpp
