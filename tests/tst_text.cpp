// Text embeddings: loaders (keys, batch, labels, metadata), the token views' data, the bundled
// language-model example and report.json's token strings and merged spans.
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/views.h"
#include "testutil.h"

#include <QFile>
#include <QProcess>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <numeric>
#include <random>

using namespace qmpp;
using namespace qmpp::test;

namespace {

const std::string kPsalm = QMPP_SAMPLES "/psalm23.safetensors";
const std::string kPsalmLabels = QMPP_SAMPLES "/psalm23.txt";

double dotv(const float* a, const float* b, i64 d) {
    double s = 0;
    for (i64 j = 0; j < d; ++j)
        s += double(a[j]) * b[j];
    return s;
}

} // namespace

class TstText : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;
    std::string path(const char* name) { return m_dir.filePath(name).toStdString(); }

  private slots:
    void spans() {
        // groups: 0 = {0,1}, 1 = {2}, 2 = {3,4,6,8,9}, 3 = {5}, dropped token 7
        const std::vector<i64> labels{0, 0, 1, 2, 2, 3, 2, -1, 2, 2};
        const auto s = mergedSpans(labels);
        QCOMPARE(s.size(), std::size_t(3)); // token 6 alone makes no span
        QCOMPARE(s[0].begin, i64(0));
        QCOMPARE(s[0].end, i64(2));
        QCOMPARE(s[0].group, i64(0));
        QCOMPARE(s[1].begin, i64(3));
        QCOMPARE(s[1].end, i64(5));
        QCOMPARE(s[2].begin, i64(8)); // the same group again, not contiguous: its own span
        QCOMPARE(s[2].end, i64(10));
        QCOMPARE(s[2].group, i64(2));
        const std::vector<std::string> words{"the", "lord", "is", "my",    "shepherd",
                                             ";",   "I",    "x",  "shall", "not"};
        QCOMPARE(spanText(words, s[1]), std::string("my shepherd"));
        const auto g = textGroups(words, labels, 4);
        QCOMPARE(g[2].text, std::string("my shepherd I shall not"));
        QCOMPARE(g[2].size, i64(5));
        QCOMPARE(g[1].text, std::string("is"));
        QCOMPARE(groupOrder(labels), (std::vector<i64>{0, 1, 2, 3, 4, 6, 8, 9, 5, 7}));
    }

    void similarityMatchesBruteForce() {
        const i64 n = 37, d = 9;
        TokenSet t = tokenSet(randomTokens(n, d, 3), n, d);
        std::vector<i64> labels(n);
        for (i64 i = 0; i < n; ++i)
            labels[i] = (i * 5) % 7;
        auto cosAt = [&](i64 a, i64 b) {
            const float* x = t.x.data() + a * d;
            const float* y = t.x.data() + b * d;
            return dotv(x, y, d) / std::sqrt(dotv(x, x, d) * dotv(y, y, d));
        };
        const SimilarityView full = similarityView(t, labels, 1000);
        QCOMPARE(full.side, n);
        QCOMPARE(full.block, i64(1));
        for (i64 a = 0; a < n; ++a)
            for (i64 b = 0; b < n; ++b)
                QVERIFY(std::abs(full.values[a * n + b] - cosAt(full.order[a], full.order[b])) <
                        1e-5);
        QCOMPARE(full.bounds.size(), std::size_t(6)); // 7 groups in order
        for (i64 r = 1; r < n; ++r)
            QVERIFY(labels[full.order[r]] >= labels[full.order[r - 1]]);
        // blocks of 4: the mean of the cosines over each block pair
        const SimilarityView small = similarityView(t, labels, 10);
        QCOMPARE(small.block, i64(4));
        QCOMPARE(small.side, i64(10));
        for (i64 a = 0; a < small.side; ++a)
            for (i64 b = 0; b < small.side; ++b) {
                double s = 0;
                int c = 0;
                for (i64 i = a * 4; i < std::min(n, a * 4 + 4); ++i)
                    for (i64 j = b * 4; j < std::min(n, b * 4 + 4); ++j, ++c)
                        s += cosAt(full.order[i], full.order[j]);
                QVERIFY(std::abs(small.values[a * 10 + b] - s / c) < 1e-5);
            }
    }

    void pcaFindsKnownAxes() {
        // tokens spread along two known orthogonal directions (sd 3 and 2) plus noise (sd 0.1)
        const i64 n = 400, d = 16;
        std::mt19937 gen(5);
        std::normal_distribution<double> nd(0.0, 1.0);
        std::vector<double> e1(d), e2(d);
        for (i64 j = 0; j < d; ++j)
            e1[j] = nd(gen);
        double s1 = std::sqrt(std::inner_product(e1.begin(), e1.end(), e1.begin(), 0.0));
        for (auto& v : e1)
            v /= s1;
        for (i64 j = 0; j < d; ++j)
            e2[j] = nd(gen);
        const double p = std::inner_product(e1.begin(), e1.end(), e2.begin(), 0.0);
        for (i64 j = 0; j < d; ++j)
            e2[j] -= p * e1[j];
        double s2 = std::sqrt(std::inner_product(e2.begin(), e2.end(), e2.begin(), 0.0));
        for (auto& v : e2)
            v /= s2;
        std::vector<float> x(n * d);
        std::vector<double> a(n), b(n);
        for (i64 i = 0; i < n; ++i) {
            a[i] = 3 * nd(gen);
            b[i] = 2 * nd(gen);
        }
        { // a sample with exactly uncorrelated, centred a and b, so the axes are e1 and e2
            const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n,
                         mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
            for (i64 i = 0; i < n; ++i)
                a[i] -= ma, b[i] -= mb;
            const double ab = std::inner_product(a.begin(), a.end(), b.begin(), 0.0) /
                              std::inner_product(a.begin(), a.end(), a.begin(), 0.0);
            for (i64 i = 0; i < n; ++i)
                b[i] -= ab * a[i];
        }
        for (i64 i = 0; i < n; ++i) {
            for (i64 j = 0; j < d; ++j)
                x[i * d + j] = float(5.0 + a[i] * e1[j] + b[i] * e2[j] + 0.1 * nd(gen));
        }
        TokenSet t = tokenSet(x, n, d);
        std::vector<float> merged(x.begin(),
                                  x.begin() + 2 * d); // two "merged" tokens: tokens 0 and 1
        const PcaView v = pcaView(t, merged, 2);
        QCOMPARE(v.tokens.size(), std::size_t(2 * n));
        QCOMPARE(v.merged.size(), std::size_t(4));
        // merged tokens land where the identical tokens do
        QVERIFY(std::abs(v.merged[0] - v.tokens[0]) < 1e-4 &&
                std::abs(v.merged[3] - v.tokens[3]) < 1e-4);
        // the first axis recovers a (up to sign), the second b
        auto corr = [&](const std::vector<double>& ref, int c) {
            double sxy = 0, sxx = 0, syy = 0, mx = 0, my = 0;
            for (i64 i = 0; i < n; ++i)
                mx += ref[i] / n, my += v.tokens[i * 2 + c] / double(n);
            for (i64 i = 0; i < n; ++i) {
                const double dx = ref[i] - mx, dy = v.tokens[i * 2 + c] - my;
                sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
            }
            return std::abs(sxy) / std::sqrt(sxx * syy);
        };
        QVERIFY2(corr(a, 0) > 0.99, qPrintable(QString::number(corr(a, 0))));
        QVERIFY2(corr(b, 1) > 0.99, qPrintable(QString::number(corr(b, 1))));
        QVERIFY(v.explained[0] > 0.6 && v.explained[0] < 0.75); // 9 / (9 + 4 + 16 * 0.01)
        QVERIFY(v.explained[1] > 0.25 && v.explained[1] < 0.35);
        QVERIFY(v.explained[0] + v.explained[1] < 1.0);
    }

    void layerSaliencyPerLayer() {
        const i64 n = 50, d = 12;
        TokenSet t = tokenSet(randomTokens(n, d, 9), n, d);
        t.hiddenLayers = 3;
        t.hidden = randomTokens(3 * n, d, 10);
        MergeParams p;
        p.backend = BackendKind::Cpu;
        p.budget = 0.3;
        const MergeResult r = runMerge(t, p);
        QCOMPARE(r.layers, i64(3));
        QCOMPARE(layerSaliency(r, -1), r.saliency);
        std::vector<double> mean(n, 0.0);
        for (i64 l = 0; l < 3; ++l) {
            const auto s = layerSaliency(r, l);
            const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
            QCOMPARE(*lo, 0.0f); // min-max normalized: the highest entropy is 0, the lowest 1
            QCOMPARE(*hi, 1.0f);
            const float* h = r.layerEntropy.data() + l * n;
            const i64 lowest = std::min_element(h, h + n) - h;
            QCOMPARE(s[lowest], 1.0f);
            for (i64 i = 0; i < n; ++i)
                mean[i] += (1.0 - s[i]) / 3.0;
        }
        for (i64 i = 0; i < n; ++i)
            QVERIFY(std::abs((1.0 - mean[i]) - r.saliency[i]) < 1e-5); // their mean
        QVERIFY_THROWS_EXCEPTION(UsageError, layerSaliency(r, 3));
    }

    void safetensorsKeysAndMetadataLabels() {
        const i64 n = 6, d = 4;
        TensorFile f;
        f.tensors.push_back({"a", NdArray::fromFloat(randomTokens(n, d, 1), {n, d})});
        f.tensors.push_back({"b", NdArray::fromFloat(randomTokens(n, d, 2), {n, d})});
        f.tensors.push_back({"h", NdArray::fromFloat(randomTokens(2 * n * d, 1, 3), {2, n, d})});
        f.tensors.push_back(
            {"att", NdArray::fromFloat(std::vector<float>(2 * n * n, 1.0f), {2, n, n})});
        f.metadata["labels"] = R"(["In","the","beginning","God","created","\u00e9"])";
        writeSafetensors(path("several.safetensors"), f);
        const auto infos = listTensors(path("several.safetensors"));
        QCOMPARE(infos.size(), std::size_t(4));
        QCOMPARE(infos[2].key, std::string("h"));
        QCOMPARE(infos[2].shape, (std::vector<i64>{2, n, d}));
        QCOMPARE(infos[0].dtype, std::string("F32"));

        InputOptions o;
        QVERIFY_THROWS_EXCEPTION(InputError,
                                 loadInput(path("several.safetensors"), o)); // ambiguous
        o.key = "b";
        o.hidden = o.attention = path("several.safetensors");
        o.hiddenKey = "h";
        o.attentionKey = "att";
        const LoadedInput in = loadInput(path("several.safetensors"), o);
        QCOMPARE(in.items[0].x, f.find("b")->toFloat());
        QCOMPARE(in.items[0].hiddenLayers, i64(2));
        QCOMPARE(in.items[0].attnLayers, i64(2));
        QCOMPARE(in.items[0].labels.size(), std::size_t(n));
        QCOMPARE(in.items[0].labels[5], std::string("\xc3\xa9"));
        // a labels file wins over the metadata; CRLF line ends are stripped
        {
            std::ofstream l(path("crlf.txt"), std::ios::binary);
            for (int i = 0; i < n; ++i)
                l << "w" << i << "\r\n";
        }
        o.labels = path("crlf.txt");
        QCOMPARE(loadInput(path("several.safetensors"), o).items[0].labels[2], std::string("w2"));
        // a labels entry that is not an array of strings is named
        f.metadata["labels"] = "[1, 2]";
        writeSafetensors(path("badlabels.safetensors"), f);
        InputOptions ob;
        ob.key = "a";
        try {
            loadInput(path("badlabels.safetensors"), ob);
            QFAIL("accepted numeric labels");
        } catch (const InputError& e) {
            QVERIFY(std::string(e.what()).find("\"labels\" metadata") != std::string::npos);
        }
        // metadata with the wrong count
        f.metadata["labels"] = R"(["one"])";
        writeSafetensors(path("fewlabels.safetensors"), f);
        QVERIFY_THROWS_EXCEPTION(InputError, loadInput(path("fewlabels.safetensors"), ob));
    }

    void batchSelection() {
        const i64 b = 3, n = 5, d = 4;
        const auto x = randomTokens(b * n * d, 1, 4);
        writeNpy(path("batch.npy"), NdArray::fromFloat(x, {b, n, d}));
        InputOptions o;
        const LoadedInput all = loadInput(path("batch.npy"), o);
        QVERIFY(all.batched);
        QCOMPARE(all.items.size(), std::size_t(b));
        o.batch = 2;
        const LoadedInput one = loadInput(path("batch.npy"), o);
        QVERIFY(!one.batched);
        QCOMPARE(one.items.size(), std::size_t(1));
        QCOMPARE(one.items[0].x, std::vector<float>(x.begin() + 2 * n * d, x.end()));
        QCOMPARE(one.sourceShape, (std::vector<i64>{b, n, d}));
        o.batch = 3;
        QVERIFY_THROWS_EXCEPTION(UsageError, loadInput(path("batch.npy"), o));
    }

    void bundledLanguageModelExample() {
        // the passage, its hidden states and attention maps, and its token strings
        const auto infos = listTensors(kPsalm);
        QCOMPARE(infos.size(), std::size_t(3));
        InputOptions o;
        o.hidden = o.attention = kPsalm;
        const LoadedInput in = loadInput(kPsalm, o);
        const TokenSet& t = in.items[0];
        QVERIFY(t.n > 100);
        QCOMPARE(t.d, i64(128));
        QCOMPARE(t.hiddenLayers, i64(4));
        QCOMPARE(t.attnLayers, i64(4));
        QCOMPARE(t.attnHeads, i64(4));
        QCOMPARE(i64(t.labels.size()), t.n);
        QCOMPARE(t.labels[0], std::string("The"));
        QCOMPARE(t.labels[1], std::string("LORD"));
        // the labels file matches the metadata
        InputOptions ol;
        ol.labels = kPsalmLabels;
        QCOMPARE(loadInput(kPsalm, ol).items[0].labels, t.labels);
        // causal attention: each row sums to 1 and never looks ahead
        for (i64 l = 0; l < 4; ++l)
            for (i64 h = 0; h < 4; ++h)
                for (i64 i = 0; i < t.n; i += 17) {
                    const float* row = t.attention.data() + ((l * 4 + h) * t.n + i) * t.n;
                    double s = 0, ahead = 0;
                    for (i64 j = 0; j < t.n; ++j)
                        (j <= i ? s : ahead) += row[j];
                    QVERIFY(std::abs(s - 1.0) < 5e-3);
                    QCOMPARE(ahead, 0.0);
                }
        // the tokens are the last layer's hidden state (stored in float16)
        for (i64 k = 0; k < t.n * t.d; k += 101)
            QVERIFY(std::abs(t.x[k] - t.hidden[3 * t.n * t.d + k]) <=
                    2e-3 * std::max(1.0f, std::abs(t.x[k])));
        // the training record says it beat the bigram baseline on held-out text
        std::ifstream rec(QMPP_SAMPLES "/psalm23-model.json");
        const auto j = nlohmann::json::parse(rec);
        QVERIFY(j["heldout"]["model_nats_per_word"].get<double>() <
                j["heldout"]["bigram_nats_per_word"].get<double>());
    }

    void reportListsTokensAndSpans() {
        const QString out = m_dir.filePath("psalm");
        QProcess p;
        p.start(QMPP_CLI,
                {"run", QString::fromStdString(kPsalm), "--attention",
                 QString::fromStdString(kPsalm), "--labels", QString::fromStdString(kPsalmLabels),
                 "--budget", "0.1", "--out", out, "--quiet"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        std::ifstream f((out + "/report.json").toStdString());
        const auto rep = nlohmann::json::parse(f);
        const NdArray labels = readNpy((out + "/labels.npy").toStdString());
        const std::vector<i64> lab(labels.as<std::int64_t>(),
                                   labels.as<std::int64_t>() + labels.numel());
        std::vector<std::string> words;
        {
            std::ifstream w(kPsalmLabels);
            for (std::string s; std::getline(w, s);)
                words.push_back(s);
        }
        const auto& text = rep["text"];
        QCOMPARE(text["tokens"].size(), words.size());
        for (std::size_t i = 0; i < words.size(); ++i) {
            QCOMPARE(text["tokens"][i]["text"].get<std::string>(), words[i]);
            QCOMPARE(text["tokens"][i]["group"].get<i64>(), lab[i]);
        }
        const auto spans = mergedSpans(lab);
        QVERIFY(!spans.empty());
        QCOMPARE(text["spans"].size(), spans.size());
        for (std::size_t s = 0; s < spans.size(); ++s) {
            const auto& js = text["spans"][s];
            QCOMPARE(js["begin"].get<i64>(), spans[s].begin);
            QCOMPARE(js["end"].get<i64>(), spans[s].end);
            for (i64 i = spans[s].begin; i < spans[s].end; ++i)
                QCOMPARE(lab[i], js["group"].get<i64>());
            QCOMPARE(js["text"].get<std::string>(), spanText(words, spans[s]));
        }
        const i64 k = rep["parameters"]["k"].get<i64>();
        QCOMPARE(i64(text["groups"].size()), k);
        i64 total = 0;
        for (const auto& g : text["groups"])
            total += g["size"].get<i64>();
        QCOMPARE(total, i64(words.size()));
        QVERIFY(rep["saliency_source"].get<std::string>().find("attention maps") !=
                std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TstText)
#include "tst_text.moc"
