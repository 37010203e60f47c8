// qmpp bench --model M: the ViT's forward timed plain and with each method merging inside it:
// one image (what the studio reruns on a slider change) and images/s at batch B.
#include "benchmodel.h"

#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/evaluate.h"
#include "qmpp/io.h"
#include "qmpp/vitgpu.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <random>

namespace qmpp::cli {

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

} // namespace

int benchModel(const BenchModelArgs& a) {
    if (a.batch < 1) throw UsageError("--batch must be at least 1");
    if (a.repeats < 1) throw UsageError("--repeats must be at least 1");
    if (a.r < 0) throw UsageError("--r must be at least 0");
    const bool gpu = a.backend != "cpu";
    if (a.backend == "cuda-basic")
        throw UsageError("--model runs on --backend cpu or cuda (its kernels have one version)");
    if (!gpu && a.precision == "fp16")
        throw UsageError("--precision fp16 needs --backend cuda; the CPU forward runs fp32");
    std::vector<ModelMethod> methods;
    for (const std::string& s : a.methods) {
        ModelMethod m;
        if (!parse(s, m)) throw UsageError("--methods: unknown method '" + s + "'");
        methods.push_back(m);
    }
    const auto model = loadVit(a.model, a.heads);
    const VitConfig& c = config(*model);
    std::unique_ptr<VitGpu> dev;
    if (gpu) {
        std::string why;
        if (!gpuForwardAvailable(&why))
            throw RuntimeFailure("bench --model --backend cuda: " + why);
        dev = std::make_unique<VitGpu>(model, a.precision == "fp16");
    }
    // normalized noise images: timing does not depend on the pixels' content
    EvalItems items;
    items.count = a.batch;
    items.labels.assign(static_cast<std::size_t>(a.batch), -1);
    items.names.assign(static_cast<std::size_t>(a.batch), "noise");
    items.pixels.resize(static_cast<std::size_t>(a.batch * c.channels * c.imageSize * c.imageSize));
    std::mt19937 gen(0);
    std::normal_distribution<float> nd;
    for (float& v : items.pixels)
        v = nd(gen);

    nlohmann::ordered_json j;
    j["tool"] = "qmpp bench --model";
    j["version"] = kVersion;
    j["model"] = {{"path", a.model}, {"name", c.name},   {"depth", c.depth},
                  {"dim", c.dim},    {"heads", c.heads}, {"patches", c.patches}};
    j["backend"] = gpu ? "cuda" : "cpu";
    j["precision"] = gpu ? dev->precision() : "fp32";
    j["device"] = gpu ? dev->device() : makeCpuBackend()->device();
    j["batch"] = a.batch;
    j["repeats"] = a.repeats;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    std::cout << std::fixed << std::setprecision(2);
    std::cout << "  " << c.name << ", "
              << (gpu ? std::string(dev->device()) + " " + dev->precision() : "CPU fp32")
              << ", r = " << a.r << " per block\n";
    bool anyFailed = false;
    for (ModelMethod m : methods) {
        HookParams hp;
        hp.method = m;
        if (m != ModelMethod::None) hp.schedule = constantSchedule(a.r);
        // on the GPU, checked before timed: two images against the CPU forward
        double verifyErr = 0;
        if (gpu) {
            const i64 nv = std::min<i64>(2, a.batch), px = c.channels * c.imageSize * c.imageSize;
            const std::vector<ForwardResult> got = dev->forward(items.pixels.data(), nv, hp);
            for (i64 i = 0; i < nv; ++i) {
                const ForwardResult want = vitForward(*model, items.pixels.data() + i * px, hp, i);
                double err = 0, scale = 0;
                for (std::size_t k = 0; k < want.logits.size(); ++k) {
                    err = std::max(err, double(std::fabs(got[i].logits[k] - want.logits[k])));
                    scale = std::max(scale, double(std::fabs(want.logits[k])));
                }
                verifyErr = std::max(verifyErr, scale > 0 ? err / scale : err);
            }
            const double tol = a.precision == "fp16" ? 5e-2 : 1e-4;
            if (!(verifyErr <= tol)) {
                std::cout << "  " << std::left << std::setw(11) << toString(m) << std::right
                          << " FAILED verification against the CPU: logits differ by " << verifyErr
                          << " (tolerance " << tol << "); not timed\n";
                rows.push_back({{"method", toString(m)},
                                {"verified", false},
                                {"max_rel_error_vs_cpu", verifyErr}});
                anyFailed = true;
                continue;
            }
        }
        // one image, the studio's case: every core on the one forward
        std::vector<double> one;
        ForwardResult last;
        for (i64 i = 0; i < a.repeats + 2; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            last = gpu ? dev->forward(items.pixels.data(), 1, hp)[0]
                       : vitForward(*model, items.pixels.data(), hp);
            if (i >= 2) one.push_back(msSince(t0));
        }
        // a batch: on the CPU items in parallel, one thread each; on the GPU one batch
        std::vector<double> batch;
        std::vector<float> logits;
        EvalDevice ed;
        ed.gpu = dev.get();
        ed.batch = a.batch;
        for (int rep = 0; rep < (gpu ? 2 + std::max(3, a.repeats / 2) : 3); ++rep)
            batch.push_back(forwardAll(*model, items, hp, logits, ed));
        if (gpu) batch.erase(batch.begin(), batch.begin() + 2); // warm-up
        const double ms1 = median(one);
        const double msB = median(batch);
        const double ips = double(a.batch) / (msB / 1e3);
        std::cout << "  " << std::left << std::setw(11) << toString(m) << std::right
                  << " one image " << std::setw(7) << ms1 << " ms (min "
                  << *std::min_element(one.begin(), one.end()) << ")   batch " << a.batch << ": "
                  << std::setw(8) << ips << " images/s   GFLOPs " << std::setprecision(3)
                  << last.flops / 1e9 << std::setprecision(2) << "  tokens left "
                  << last.blocks.back().tokensOut;
        if (gpu) std::cout << std::scientific << "  (vs CPU " << verifyErr << ")" << std::fixed;
        std::cout << "\n";
        rows.push_back({{"method", toString(m)},
                        {"schedule", hp.schedule.describe()},
                        {"one_image_ms_median", ms1},
                        {"one_image_ms_min", *std::min_element(one.begin(), one.end())},
                        {"one_image_ms", one},
                        {"batch_ms_median", msB},
                        {"batch_images_per_s", ips},
                        {"gflops", last.flops / 1e9},
                        {"verified", true},
                        {"max_rel_error_vs_cpu",
                         gpu ? nlohmann::ordered_json(verifyErr) : nlohmann::ordered_json()},
                        {"tokens_left", last.blocks.back().tokensOut}});
    }
    j["rows"] = rows;
    if (!a.json.empty()) {
        const std::string text = j.dump(2) + "\n";
        writeFileAtomic(a.json, std::vector<std::uint8_t>(text.begin(), text.end()));
        std::cout << "  wrote " << a.json << "\n";
    }
    return anyFailed ? kRuntime : kOk;
}

} // namespace qmpp::cli
