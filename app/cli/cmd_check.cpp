// qmpp check: every kernel x version x precision against the float64 CPU reference.
#include "commands.h"

#include "qmpp/check.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/vitgpu.h"

#include <fstream>
#include <iostream>
#include <memory>
#include <random>

namespace qmpp::cli {

namespace {

Exit report(const std::vector<GpuModelCheck>& rows) {
    i64 failed = 0;
    for (const auto& r : rows)
        failed += !r.pass;
    std::cout << "  " << rows.size() - failed << " of " << rows.size() << " checks passed\n";
    return failed ? kRuntime : kOk;
}

Exit checkLanguageModel(const std::string& path, const std::string& textPath) {
    const auto model = loadLm(path);
    const std::string text = textPath.empty()
                                 ? std::string(QMPP_SOURCE_DIR) + "/resources/samples/psalm23.txt"
                                 : textPath;
    const std::vector<std::uint8_t> bytes = readFileBytes(text);
    std::vector<i64> ids = tokenizeLm(*model, std::string(bytes.begin(), bytes.end()));
    if (i64(ids.size()) > config(*model).context) ids.resize(config(*model).context);
    if (ids.size() < 8)
        throw InputError(text + ": " + std::to_string(ids.size()) +
                         " words; the check needs at least 8");
    std::cout << "qmpp check --model " << path << " on " << ids.size() << " words of " << text
              << "\n";
    return report(checkLmGpu(model, ids, std::cout));
}

Exit checkModel(const std::string& path, const std::string& pixelsPath,
                const std::string& textPath) {
    std::string why;
    if (!gpuForwardAvailable(&why)) throw RuntimeFailure("check --model: " + why);
    if (isLanguageModel(path)) return checkLanguageModel(path, textPath);
    const auto model = loadVit(path);
    const VitConfig& c = config(*model);
    const i64 px = c.channels * c.imageSize * c.imageSize;
    std::vector<float> pixels;
    i64 count = 8;
    if (!pixelsPath.empty()) {
        const NdArray a = readNpy(pixelsPath);
        if (a.ndim() != 4 || a.shape[1] != c.channels || a.shape[2] != c.imageSize ||
            a.shape[3] != c.imageSize)
            throw InputError(pixelsPath + ": pixels " + a.shapeString() + " do not fit " + path +
                             " ([B, " + std::to_string(c.channels) + ", " +
                             std::to_string(c.imageSize) + ", " + std::to_string(c.imageSize) +
                             "] expected)");
        pixels = a.toFloat();
        count = a.shape[0];
    } else {
        std::mt19937 gen(0);
        std::normal_distribution<float> nd;
        pixels.resize(static_cast<std::size_t>(count * px));
        for (float& v : pixels)
            v = nd(gen);
    }
    std::cout << "qmpp check --model " << path << " (" << c.depth << " blocks, D " << c.dim << ", "
              << c.patches << " patches)\n";
    return report(checkVitGpu(model, pixels.data(), count, std::cout));
}

} // namespace

Runner addCheck(CLI::App& app) {
    auto o = std::make_shared<CheckOptions>();
    CLI::App* c = app.add_subcommand(
        "check",
        "Verify every kernel (or, without a GPU, the CPU steps) against float64 references");
    c->add_option("--backend", o->backend, "all | cpu | cuda-basic | cuda (default all)")
        ->check(CLI::IsMember({"all", "cpu", "cuda-basic", "cuda"}));
    c->add_flag("--quick", o->quick, "small sizes only (for sanitizer runs)");
    c->add_option("--photo", o->photoTokens,
                  "a real photo's tokens [N,D] .npy (default: the bundled sample's)");
    c->add_option("--seed", o->seed, "random seed (default: fresh, printed)")
        ->check(seedValidator());
    auto model = std::make_shared<std::string>();
    auto pixels = std::make_shared<std::string>();
    c->add_option("--model", *model,
                  "check the GPU forward of this ViT instead: its kernels against float64, then "
                  "GPU against CPU for every method, FP32 and FP16");
    c->add_option("--pixels", *pixels,
                  "--model: pixels .npy [B,C,H,W], normalized (default: 8 noise images)");
    auto text = std::make_shared<std::string>();
    c->add_option("--text", *text,
                  "--model (a language model): a text (default: the bundled Psalm 23)");
    return [o, model, pixels, text] {
        if (!model->empty()) return checkModel(*model, *pixels, *text);
        if (o->photoTokens.empty()) {
            const std::string bundled =
                std::string(QMPP_SOURCE_DIR) + "/resources/samples/chelsea_tokens.npy";
            if (std::ifstream(bundled).good()) o->photoTokens = bundled;
        }
        const auto rows = runChecks(*o, std::cout);
        for (const auto& r : rows)
            if (!r.pass) return kRuntime;
        return rows.empty() ? kRuntime : kOk;
    };
}

} // namespace qmpp::cli
