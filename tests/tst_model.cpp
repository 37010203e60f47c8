// The model in the loop: the ViT forward against timm, ToMe inside the model against its
// published algorithm, every method's bookkeeping, schedules, bad model files, IDX input and
// `qmpp eval`. Reference files: tests/fixtures/model (scripts/make-model-fixtures.py).
#include "modeltest.h"
#include "testutil.h"

#include "../core/model/fastmath.h"
#include "qmpp/error.h"
#include "qmpp/evaluate.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/modelinput.h"
#include "qmpp/vit.h"
#include "qmpp/vitgpu.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace qmpp;
using test::hook;

namespace {

const std::string kModel = QMPP_SOURCE_DIR "/resources/models/vit-fmnist.safetensors";
const std::string kFix = QMPP_FIXTURES "/model/";
const char* kFashion = "/usr/share/datasets/fashion-mnist";

std::vector<double> doubles(const std::string& path) {
    return readNpy(path).toDouble();
}

// max |a - b| / max |b| over one item's logits
double relErr(const float* a, const double* b, i64 n) {
    double err = 0, scale = 0;
    for (i64 i = 0; i < n; ++i) {
        err = std::max(err, std::fabs(double(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(b[i]));
    }
    return err / scale;
}

// The bundled model's tensors, to build broken variants from.
TensorFile bundled() {
    return readSafetensors(kModel);
}

std::string expectLoadError(const TensorFile& f, const QString& dir, const char* name,
                            i64 heads = 0) {
    const std::string path = (dir + "/" + name).toStdString();
    writeSafetensors(path, f);
    try {
        loadVit(path, heads);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

void writeIdx(const std::string& path, const std::vector<std::uint8_t>& header,
              const std::vector<std::uint8_t>& body) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(header.data()), std::streamsize(header.size()));
    f.write(reinterpret_cast<const char*>(body.data()), std::streamsize(body.size()));
}

} // namespace

class TestModel : public QObject {
    Q_OBJECT

  private slots:
    void fastMathIsAccurate() {
        double worstExp = 0, worstErf = 0;
        for (int i = 0; i <= 870000; ++i) {
            const float x = -float(i) * 1e-4f;
            const double ref = std::exp(double(x));
            worstExp = std::max(worstExp, std::fabs(fast::expNonPositive(x) - ref) / ref);
        }
        for (int i = -80000; i <= 80000; ++i) {
            const float x = float(i) * 1e-4f;
            worstErf = std::max(worstErf, std::fabs(fast::erf(x) - std::erf(double(x))));
        }
        QVERIFY2(worstExp < 3e-7, qPrintable(QString::number(worstExp)));
        QVERIFY2(worstErf < 5e-7, qPrintable(QString::number(worstErf)));
    }

    void plainForwardEqualsTimm() {
        const auto m = loadVit(kModel);
        const VitConfig& c = config(*m);
        QCOMPARE(c.depth, i64(6));
        QCOMPARE(c.dim, i64(192));
        QCOMPARE(c.heads, i64(3));
        QCOMPARE(c.patches, i64(196));
        QCOMPARE(c.classNames.at(9), std::string("Ankle boot"));
        const NdArray px = readNpy(kFix + "fmnist16_pixels.npy");
        const std::vector<float> pix = px.toFloat();
        const std::vector<double> ref = doubles(kFix + "fmnist16_logits_timm.npy");
        const std::vector<double> labels = doubles(kFix + "fmnist16_labels.npy");
        const i64 per = 56 * 56;
        int right = 0;
        for (i64 i = 0; i < 16; ++i) {
            const ForwardResult r = vitForward(*m, pix.data() + i * per, HookParams{});
            const double e = relErr(r.logits.data(), ref.data() + i * 10, 10);
            QVERIFY2(e <= 1e-4, qPrintable(QString("item %1: %2").arg(i).arg(e)));
            right += std::max_element(r.logits.begin(), r.logits.end()) - r.logits.begin() ==
                     i64(labels[i]);
            QCOMPARE(r.blocks.size(), std::size_t(6));
            for (const BlockStat& b : r.blocks)
                QCOMPARE(b.tokensOut, i64(197));
        }
        QVERIFY(right >= 13); // a 92 % model on 16 test images
    }

    void fp16ViTBWidthBlockEqualsTimm() {
        const auto m = loadVit(kFix + "vitb1.safetensors");
        QCOMPARE(config(*m).weightsDtype, std::string("F16"));
        QCOMPARE(config(*m).dim, i64(768));
        const std::vector<float> pix = readNpy(kFix + "vitb1_pixels.npy").toFloat();
        const std::vector<double> ref = doubles(kFix + "vitb1_logits.npy");
        for (i64 i = 0; i < 2; ++i) {
            const ForwardResult r = vitForward(*m, pix.data() + i * 3 * 224 * 224, HookParams{});
            const double e = relErr(r.logits.data(), ref.data() + i * 10, 10);
            QVERIFY2(e <= 1e-4, qPrintable(QString("item %1: %2").arg(i).arg(e)));
        }
    }

    void tomeInsideTheModelEqualsItsPublishedAlgorithm() {
        const auto m = loadVit(kModel);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        for (int r : {8, 16, 24}) {
            const std::vector<double> ref =
                doubles(kFix + "fmnist16_tome_r" + std::to_string(r) + ".npy");
            for (i64 i = 0; i < 16; ++i) {
                const ForwardResult res = vitForward(*m, pix.data() + i * 56 * 56,
                                                     hook(ModelMethod::ToMe, constantSchedule(r)));
                const double e = relErr(res.logits.data(), ref.data() + i * 10, 10);
                QVERIFY2(e <= 1e-3, qPrintable(QString("r %1 item %2: %3").arg(r).arg(i).arg(e)));
                i64 t = 197;
                for (const BlockStat& b : res.blocks) {
                    QCOMPARE(b.tokensIn, t);
                    t -= std::min<i64>(r, (t - 1) / 2);
                    QCOMPARE(b.tokensOut, t);
                }
            }
        }
    }

    // Every method: the class token stays, counts add up, sources cover the patches.
    void everyMethodKeepsItsBookkeeping() {
        const auto m = loadVit(kModel);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        ForwardOptions opt;
        opt.keepSources = true;
        for (ModelMethod meth :
             {ModelMethod::QuickMerge, ModelMethod::ToMe, ModelMethod::TopK, ModelMethod::Random}) {
            const ForwardResult r =
                vitForward(*m, pix.data(), hook(meth, constantSchedule(16)), 0, opt);
            const i64 t = r.blocks.back().tokensOut;
            QCOMPARE(t, i64(197 - 6 * 16));
            QCOMPARE(i64(r.counts.size()), t);
            QCOMPARE(r.counts[0], 1.0f); // the class token holds itself
            double held = 0;
            for (i64 k = 1; k < t; ++k)
                held += r.counts[k];
            const bool prunes = meth == ModelMethod::TopK || meth == ModelMethod::Random;
            QCOMPARE(held, prunes ? double(t - 1) : 196.0);
            std::vector<double> perRow(static_cast<std::size_t>(t), 0.0);
            i64 dropped = 0;
            for (std::int32_t o : r.owner) {
                QVERIFY(o != 0); // no patch merged into the class token
                QVERIFY(o < t);
                if (o < 0)
                    ++dropped;
                else
                    perRow[o] += 1;
            }
            QCOMPARE(dropped, prunes ? i64(196 - (t - 1)) : i64(0));
            for (i64 k = 1; k < t; ++k)
                QCOMPARE(perRow[k], double(r.counts[k]));
            // the FLOPs follow the tokens
            QVERIFY(r.flops <
                    vitFlops(config(*m), vitForward(*m, pix.data(), HookParams{}).blocks));
        }
    }

    void randomMethodsFollowTheirSeedAndOnlyIt() {
        const auto m = loadVit(kModel);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        ForwardOptions opt;
        opt.keepSources = true;
        for (ModelMethod meth : {ModelMethod::QuickMerge, ModelMethod::Random}) {
            const auto a = vitForward(*m, pix.data(), hook(meth, constantSchedule(24), 0), 0, opt);
            const auto b = vitForward(*m, pix.data(), hook(meth, constantSchedule(24), 0), 0, opt);
            const auto c = vitForward(*m, pix.data(), hook(meth, constantSchedule(24), 1), 0, opt);
            const auto d = vitForward(*m, pix.data(), hook(meth, constantSchedule(24), 0), 1, opt);
            QVERIFY(a.owner == b.owner && a.logits == b.logits);
            QVERIFY(a.owner != c.owner); // another seed
            QVERIFY(a.owner != d.owner); // another item: another Gumbel offset
        }
        HookParams det = hook(ModelMethod::QuickMerge, constantSchedule(24), 0);
        det.gumbelScale = 0;
        const auto a = vitForward(*m, pix.data(), det, 0, opt);
        det.seed = 7;
        const auto b = vitForward(*m, pix.data(), det, 3, opt);
        QVERIFY(a.owner == b.owner); // no noise: neither seed nor item matters
        QVERIFY(a.logits == b.logits);
    }

    void schedulesMatchToMesParseR() {
        QCOMPARE(constantSchedule(8).perBlock(6), (std::vector<i64>{8, 8, 8, 8, 8, 8}));
        // parse_r(6, (8, -0.5)): min 12, max 4, step -1.6 -> int(12 - 1.6 i)
        QCOMPARE(inflectSchedule(8, -0.5).perBlock(6), (std::vector<i64>{12, 10, 8, 7, 5, 4}));
        QCOMPARE(inflectSchedule(8, 0.5).perBlock(6), (std::vector<i64>{4, 5, 7, 8, 10, 12}));
        QCOMPARE(listSchedule({3, 0, 5}).perBlock(5), (std::vector<i64>{3, 0, 5, 0, 0}));
        const auto m = loadVit(kModel);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        for (double budget : {0.25, 0.5, 0.001}) {
            for (ModelMethod meth : {ModelMethod::QuickMerge, ModelMethod::TopK}) {
                const auto r = vitForward(*m, pix.data(), hook(meth, budgetSchedule(budget, 2)));
                const i64 keep = std::max<i64>(1, i64(std::floor(budget * 196)));
                for (std::size_t l = 0; l < r.blocks.size(); ++l)
                    QCOMPARE(r.blocks[l].tokensOut, l < 2 ? i64(197) : keep + 1);
            }
        }
        // ToMe never merges more than half of the non-class tokens in one block
        const auto r = vitForward(*m, pix.data(), hook(ModelMethod::ToMe, constantSchedule(150)));
        QCOMPARE(r.blocks[0].tokensOut, i64(197 - 98));
    }

    void badModelFilesNameTheProblem() {
        QTemporaryDir dir;
        const QString d = dir.path();
        {
            TensorFile f = bundled();
            f.tensors.erase(
                std::remove_if(f.tensors.begin(), f.tensors.end(),
                               [](const auto& t) { return t.first == "blocks.2.attn.proj.bias"; }),
                f.tensors.end());
            QVERIFY(
                expectLoadError(f, d, "missing.safetensors").find("'blocks.2.attn.proj.bias'") !=
                std::string::npos);
        }
        {
            TensorFile f = bundled();
            for (auto& t : f.tensors)
                if (t.first == "blocks.4.mlp.fc2.weight") t.second.shape = {768, 192};
            const std::string e = expectLoadError(f, d, "shape.safetensors");
            QVERIFY2(e.find("'blocks.4.mlp.fc2.weight'") != std::string::npos &&
                         e.find("[192, 768]") != std::string::npos,
                     e.c_str());
        }
        {
            TensorFile f = bundled();
            const std::string e = expectLoadError(f, d, "heads.safetensors", 5);
            QVERIFY2(e.find("5 heads do not divide D = 192") != std::string::npos, e.c_str());
            f.metadata.erase("num_heads");
            QVERIFY(expectLoadError(f, d, "noheads.safetensors").find("--heads") !=
                    std::string::npos);
        }
        {
            TensorFile f = bundled();
            for (auto& t : f.tensors)
                if (t.first == "blocks.0.norm1.weight") {
                    float nan = std::nanf("");
                    std::memcpy(t.second.bytes.data() + 4 * 7, &nan, 4);
                }
            QVERIFY(expectLoadError(f, d, "nan.safetensors")
                        .find("'blocks.0.norm1.weight' holds a NaN") != std::string::npos);
        }
        {
            TensorFile f = bundled();
            f.tensors.push_back(
                {"dist_token", NdArray::fromFloat(std::vector<float>(192), {1, 1, 192})});
            QVERIFY(expectLoadError(f, d, "extra.safetensors").find("'dist_token'") !=
                    std::string::npos);
        }
        {
            TensorFile f = bundled();
            for (auto& t : f.tensors)
                if (t.first == "pos_embed") {
                    t.second.shape = {1, 196, 192};
                    t.second.bytes.resize(196 * 192 * 4);
                }
            QVERIFY(expectLoadError(f, d, "grid.safetensors").find("not a square grid") !=
                    std::string::npos);
        }
        {
            TensorFile f = bundled();
            f.metadata["class_names"] = "[\"a\", \"b\"]";
            QVERIFY(expectLoadError(f, d, "names.safetensors").find("class_names") !=
                    std::string::npos);
            f = bundled();
            f.metadata["input_size"] = "224";
            QVERIFY(expectLoadError(f, d, "size.safetensors").find("input_size") !=
                    std::string::npos);
        }
        // not a model at all: the tokens sample
        try {
            loadVit(QMPP_SAMPLES "/psalm23.safetensors");
            QFAIL("a tokens file loaded as a model");
        } catch (const InputError& e) {
            QVERIFY(std::string(e.what()).find("patch_embed.proj.weight") != std::string::npos);
        }
    }

    void idxFilesAreCheckedAgainstTheirData() {
        QTemporaryDir dir;
        const std::string p = (dir.path() + "/x").toStdString();
        // 3 images of 2x2 promised as 100
        writeIdx(p, {0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 2, 0, 0, 0, 2},
                 std::vector<std::uint8_t>(12, 7));
        try {
            readIdx(p);
            QFAIL("a short IDX file was read");
        } catch (const InputError& e) {
            QVERIFY2(std::string(e.what()).find("the header promises 400") != std::string::npos,
                     e.what());
        }
        QCOMPARE(readIdx(p, 3).shape, (std::vector<std::int64_t>{3, 2, 2}));
        writeIdx(p, {0, 0, 0x0D, 1, 0, 0, 0, 1}, {1, 2, 3, 4});
        QVERIFY_THROWS_EXCEPTION(InputError, readIdx(p));
        writeIdx(p, {1, 2, 8, 1}, {});
        QVERIFY_THROWS_EXCEPTION(InputError, readIdx(p));
        // 2^30 items of 28 x 28 bytes: refused before reading, unless only a few are asked for
        writeIdx(p, {0, 0, 8, 3, 0x40, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28},
                 std::vector<std::uint8_t>(2 * 784, 1));
        try {
            readIdx(p);
            QFAIL("a header promising 800 GB was read");
        } catch (const InputError& e) {
            QVERIFY2(std::string(e.what()).find("--limit") != std::string::npos, e.what());
        }
        QCOMPARE(readIdx(p, 2).shape, (std::vector<std::int64_t>{2, 28, 28}));
        // a header whose items would be huge is refused before any allocation
        writeIdx(p, {0, 0, 8, 3, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}, {});
        QVERIFY_THROWS_EXCEPTION(InputError, readIdx(p));
    }

    // The dataset path preprocesses as the training script did (PyTorch's bilinear resize).
    void fashionMnistPixelsEqualTheTrainingScripts() {
        if (!QFile::exists(QString(kFashion) + "/t10k-images-idx3-ubyte.gz"))
            QSKIP("dataset-fashion-mnist is not installed");
        const auto m = loadVit(kModel);
        const EvalItems it = loadEvalItems(kFashion, config(*m), true, 16);
        QCOMPARE(it.count, i64(16));
        const std::vector<float> ref = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        QCOMPARE(it.pixels.size(), ref.size());
        double worst = 0;
        for (std::size_t i = 0; i < ref.size(); ++i)
            worst = std::max(worst, double(std::fabs(it.pixels[i] - ref[i])));
        QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
        const std::vector<double> labels = doubles(kFix + "fmnist16_labels.npy");
        for (i64 i = 0; i < 16; ++i)
            QCOMPARE(it.labels[i], i64(labels[i]));
    }

    // A folder: images directly in it have no label; a subfolder named after a class (any case,
    // '/' written '_') or its index labels its images; any other subfolder is refused.
    void imageFoldersAreLabelledBySubfolder() {
        const auto m = loadVit(kModel);
        const VitConfig& c = config(*m);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        const std::vector<double> labels = doubles(kFix + "fmnist16_labels.npy");
        QTemporaryDir dir;
        auto save = [&](int item, const QString& sub, const QString& name) {
            QImage img(56, 56, QImage::Format_Grayscale8);
            for (int y = 0; y < 56; ++y)
                for (int x = 0; x < 56; ++x) {
                    const float v =
                        pix[std::size_t(item * 56 * 56 + y * 56 + x)] * c.std[0] + c.mean[0];
                    img.scanLine(y)[x] = uchar(std::clamp(std::lround(v * 255.0f), 0L, 255L));
                }
            QDir(dir.path()).mkpath(sub);
            QVERIFY(img.save(dir.path() + "/" + sub + "/" + name));
        };
        const QString names[10] = {"t-shirt_top", "TROUSER", "Pullover", "3",   "coat",
                                   "Sandal",      "shirt",   "sneaker",  "bag", "9"};
        for (int i = 0; i < 8; ++i)
            save(i, names[int(labels[i])], QString("img%1.png").arg(i));
        save(8, ".", "loose.png");
        const EvalItems it = loadEvalItems(dir.path().toStdString(), c, false);
        QCOMPARE(it.count, i64(9));
        QCOMPARE(it.labels[0], i64(-1)); // the loose image first, unlabelled
        int agree = 0;
        for (i64 k = 1; k < 9; ++k) {
            const int item =
                QFileInfo(QString::fromStdString(it.names[k])).baseName().mid(3).toInt();
            QCOMPARE(it.labels[k], i64(labels[item]));
            // 8-bit pixels: the same image within a quantization step
            double worst = 0;
            for (int j = 0; j < 56 * 56; ++j)
                worst = std::max(worst, double(std::fabs(it.pixels[std::size_t(k * 56 * 56 + j)] -
                                                         pix[std::size_t(item * 56 * 56 + j)])));
            QVERIFY(worst <= 0.5 / 255 / c.std[0] + 1e-5);
            const auto a = vitForward(*m, it.pixels.data() + k * 56 * 56, HookParams{}).logits;
            const auto b = vitForward(*m, pix.data() + item * 56 * 56, HookParams{}).logits;
            agree += std::max_element(a.begin(), a.end()) - a.begin() ==
                     std::max_element(b.begin(), b.end()) - b.begin();
        }
        QCOMPARE(agree, 8);
        QDir(dir.path()).mkpath("shoes");
        save(9, "shoes", "x.png");
        try {
            loadEvalItems(dir.path().toStdString(), c, false);
            QFAIL("a subfolder that names no class was accepted");
        } catch (const InputError& e) {
            QVERIFY2(std::string(e.what()).find("shoes") != std::string::npos, e.what());
        }
    }

    // A stopped job (its thread's stop flag set, as the studio's jobs set it) ends the
    // evaluation with Cancelled, though the engine throws it inside the items' parallel loop.
    void evaluationStopsWithItsJob() {
        const auto m = loadVit(kModel);
        const EvalItems items = loadEvalItems(kFix + "fmnist16_pixels.npy", config(*m), false);
        for (ModelMethod meth : {ModelMethod::QuickMerge, ModelMethod::ToMe}) {
            std::atomic<int> flag{1};
            const StopScope scope(&flag);
            bool cancelled = false;
            try {
                evaluate(*m, items, hook(meth, constantSchedule(8)), {0},
                         [meth](i64, i64) { return meth == ModelMethod::QuickMerge; });
            } catch (const Cancelled&) {
                cancelled = true;
            }
            QVERIFY(cancelled);
        }
    }

    void measuresAreRight() {
        // KL of equal logits is 0; of a known pair, by hand
        const float a[2] = {0.0f, 0.0f}, b[2] = {std::log(3.0f), 0.0f};
        QCOMPARE(klDivergence(a, a, 2), 0.0);
        // p = (1/2, 1/2), q = (3/4, 1/4): 0.5 ln(2/3) + 0.5 ln 2
        QVERIFY(std::fabs(klDivergence(a, b, 2) - (0.5 * std::log(2.0 / 3) + 0.5 * std::log(2.0))) <
                1e-7);
        const Proportion w = wilson(45, 50);
        QVERIFY(std::fabs(w.lo - 0.7864) < 1e-3 && std::fabs(w.hi - 0.9565) < 1e-3);
        QCOMPARE(wilson(0, 0).total, i64(0));
    }

    // --overlays: the pictures overlays.json lists, per-block agreement for every block, the
    // report showing and checking them; replaced whole with --force; refused where meaningless.
    void cliEvalDrawsOverlays() {
        QTemporaryDir dir;
        const QString out = dir.path() + "/o";
        const QStringList base = {"eval",
                                  "--model",
                                  QString::fromStdString(kModel),
                                  QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                  "--method",
                                  "quickmerge",
                                  "--r",
                                  "16"};
        const auto r = test::runQmpp(base + QStringList{"--overlays", "3", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile f(out + "/overlays.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject j = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(j["block"].toInt(), 5);
        const QJsonArray items = j["items"].toArray();
        QCOMPARE(items.size(), 3);
        for (const auto& it : items) {
            const QJsonObject o = it.toObject();
            QCOMPARE(o["spearman_class_attention"].toArray().size(), 6);
            QCOMPARE(o["spearman_rollout"].toArray().size(), 6);
            const QJsonObject files = o["files"].toObject();
            QCOMPARE(files.size(), 4);
            for (const auto& name : files) {
                const QImage img(out + "/" + name.toString());
                QCOMPARE(img.size(), QSize(224, 224)); // 56 px drawn 4 times as large
            }
        }
        const auto rep = test::runQmpp({"report", out});
        QVERIFY2(rep.code == 0 && rep.out.contains("verified: 6 of 6"), qPrintable(rep.out));
        QFile::remove(out + "/overlays/item1_rollout.png");
        const auto bad = test::runQmpp({"report", out, "--out", dir.path() + "/bad.html"});
        QCOMPARE(bad.code, 4);
        QVERIFY2(bad.out.contains("11 of 12 found"), qPrintable(bad.out));
        // --force replaces the folder of pictures whole: no stale picture stays
        const auto again =
            test::runQmpp(base + QStringList{"--overlays", "1", "--out", out, "--force"});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QCOMPARE(QDir(out + "/overlays").entryList(QDir::Files).size(), 4);
        for (const QStringList& wrong :
             {QStringList{"--overlays", "65"}, QStringList{"--overlays", "-1"},
              QStringList{"--sweep", "--overlays", "2"}}) {
            QStringList args = {"eval",
                                "--model",
                                QString::fromStdString(kModel),
                                QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                "--out",
                                dir.path() + "/w"};
            const auto b = test::runQmpp(args + wrong);
            QVERIFY2(b.code == 2, qPrintable(wrong.join(' ') + ": " + b.err));
        }
    }

    void cliEvalWritesWhatItMeasured() {
        QTemporaryDir dir;
        const QString out = dir.path() + "/e";
        const auto r = test::runQmpp({"eval", "--model", QString::fromStdString(kModel),
                                      QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                      "--method", "tome", "--r", "16", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const std::vector<double> ref = doubles(kFix + "fmnist16_tome_r16.npy");
        const NdArray merged = readNpy((out + "/logits_merged.npy").toStdString());
        QCOMPARE(merged.shape, (std::vector<std::int64_t>{1, 16, 10}));
        const std::vector<float> got = merged.toFloat();
        for (i64 i = 0; i < 16; ++i)
            QVERIFY(relErr(got.data() + i * 10, ref.data() + i * 10, 10) <= 1e-3);
        QFile f(out + "/eval.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject j = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(j["method"].toString(), QString("tome"));
        QCOMPARE(j["seeds"].toArray().size(), 1); // ToMe is deterministic
        QVERIFY(j["flops"].toObject()["ratio"].toDouble() < 0.8);
        QVERIFY(QFile::exists(out + "/predictions.csv"));
        // qmpp report renders the folder and recomputes its claims from the logits; a changed
        // logit file makes the report say so
        const auto rep = test::runQmpp({"report", out});
        QVERIFY2(rep.code == 0, qPrintable(rep.out + rep.err));
        QVERIFY2(rep.out.contains("verified: 3 of 3 checks passed"), qPrintable(rep.out));
        QFile html(out + "/report.html");
        QVERIFY(html.open(QIODevice::ReadOnly));
        const QString page = QString::fromUtf8(html.readAll());
        QVERIFY(page.contains("Tokens per block") && page.contains("top-1 agreement"));
        std::vector<float> bent = merged.toFloat();
        bent[3] += 40.0f; // item 0 now votes for class 3
        writeNpy((out + "/logits_merged.npy").toStdString(), NdArray::fromFloat(bent, {1, 16, 10}));
        const auto bad = test::runQmpp({"report", out, "--out", dir.path() + "/bad.html"});
        QCOMPARE(bad.code, 4);
        QVERIFY2(bad.out.contains("FAILED: seed 0: agreement and KL"), qPrintable(bad.out));
        // an eval folder holding results is refused without --force
        const auto again = test::runQmpp({"eval", "--model", QString::fromStdString(kModel),
                                          QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                          "--method", "tome", "--r", "16", "--out", out});
        QCOMPARE(again.code, 3);
        // random methods run over the seeds, and bad options are usage errors
        const auto q = test::runQmpp({"eval", "--model", QString::fromStdString(kModel),
                                      QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                      "--method", "quickmerge", "--budget", "0.3", "--at-block",
                                      "1", "--seeds", "0,1,2", "--out", dir.path() + "/q"});
        QVERIFY2(q.code == 0, qPrintable(q.err));
        QCOMPARE(readNpy((dir.path() + "/q/logits_merged.npy").toStdString()).shape[0],
                 std::int64_t(3));
        for (const QStringList& bad :
             {QStringList{"--r", "8", "--budget", "0.5"}, QStringList{"--budget", "1.5"},
              QStringList{"--list", "1,2,3,4,5,6,7"}, QStringList{"--seeds", "a"},
              QStringList{"--r", "-3"}, QStringList{},
              QStringList{"--r", "8", "--precision", "fp16"}}) {
            QStringList args = {"eval",
                                "--model",
                                QString::fromStdString(kModel),
                                QString::fromStdString(kFix + "fmnist16_pixels.npy"),
                                "--out",
                                dir.path() + "/bad"};
            args += bad;
            const auto b = test::runQmpp(args);
            QVERIFY2(b.code == 2, qPrintable(bad.join(' ') + ": " + b.err));
            QVERIFY(!QDir(dir.path() + "/bad").exists());
        }
        // the GPU forward without a device: a runtime failure that says why, nothing written
        if (!gpuForwardAvailable()) {
            const auto g =
                test::runQmpp({"eval", "--model", QString::fromStdString(kModel),
                               QString::fromStdString(kFix + "fmnist16_pixels.npy"), "--r", "8",
                               "--backend", "cuda", "--out", dir.path() + "/gpu"});
            QCOMPARE(g.code, 4);
            QVERIFY2(g.err.contains("eval --backend cuda"), qPrintable(g.err));
            QVERIFY(!QDir(dir.path() + "/gpu").exists());
            const auto b = test::runQmpp(
                {"bench", "--model", QString::fromStdString(kModel), "--backend", "cuda"});
            QCOMPARE(b.code, 4);
        }
        // --sweep: every method at every r, the plain forward once
        const auto sw =
            test::runQmpp({"eval", "--model", QString::fromStdString(kModel),
                           QString::fromStdString(kFix + "fmnist16_pixels.npy"), "--limit", "6",
                           "--sweep", "--methods", "tome,topk,random", "--r-list", "0,8,16",
                           "--seeds", "0,1", "--out", dir.path() + "/sw"});
        QVERIFY2(sw.code == 0, qPrintable(sw.err));
        QFile csv(dir.path() + "/sw/sweep.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(csv.readAll()).trimmed().split('\n');
        QCOMPARE(lines.size(), 1 + 3 + 3 + 3 * 2); // header; tome, topk once; random per seed
        const QStringList head = lines[0].split(',');
        const int ratio = int(head.indexOf("flops_ratio")), agree = int(head.indexOf("agreement"));
        QCOMPARE(lines[1].split(',')[ratio].toDouble(), 1.0); // r = 0 merges nothing
        QCOMPARE(lines[1].split(',')[agree].toDouble(), 1.0);
        QVERIFY(lines[3].split(',')[ratio].toDouble() < lines[2].split(',')[ratio].toDouble());
        QCOMPARE(QFile::exists(dir.path() + "/sw/sweep.png"), qmpp::haveImageSupport());
        const auto swr = test::runQmpp({"report", dir.path() + "/sw"});
        QVERIFY2(swr.code == 0, qPrintable(swr.out + swr.err));
        // a model of the wrong input size for the pixels is bad input naming the file
        const auto w =
            test::runQmpp({"eval", "--model", QString::fromStdString(kFix + "vitb1.safetensors"),
                           QString::fromStdString(kFix + "fmnist16_pixels.npy"), "--method", "none",
                           "--out", dir.path() + "/w"});
        QCOMPARE(w.code, 3);
        QVERIFY(w.err.contains("fmnist16_pixels.npy"));
    }
};

QTEST_GUILESS_MAIN(TestModel)
#include "tst_model.moc"
