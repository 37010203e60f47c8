// The causal language model: its forward against the training script's, the tokenizer, prefix
// compression's rules (order, positions, no look at the future), bad model files, and
// `qmpp eval` on a text. Reference files: tests/fixtures/model/kjv_psalm23_*.npy
// (scripts/train-text-model.py --fixtures).
#include "testutil.h"

#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/lm.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <cmath>
#include <fstream>
#include <sstream>

using namespace qmpp;

namespace {

const std::string kLm = QMPP_SOURCE_DIR "/resources/models/kjv-lm.safetensors";
const std::string kFix = QMPP_FIXTURES "/model/";
const std::string kPsalm = QMPP_SAMPLES "/psalm23.txt";

std::vector<i64> fixtureIds() {
    const NdArray a = readNpy(kFix + "kjv_psalm23_ids.npy");
    std::vector<i64> ids;
    for (double v : a.toDouble())
        ids.push_back(static_cast<i64>(v));
    return ids;
}

std::string readText(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

PrefixMerge prefixMerge(ModelMethod m, i64 block, i64 prefix, i64 groups, std::uint64_t seed = 0) {
    PrefixMerge pm;
    pm.method = m;
    pm.block = block;
    pm.prefix = prefix;
    pm.groups = groups;
    pm.params.seed = seed;
    return pm;
}

std::string loadError(const TensorFile& f, const QString& dir, const char* name) {
    const std::string path = (dir + "/" + name).toStdString();
    writeSafetensors(path, f);
    try {
        loadLm(path);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

class TestLm : public QObject {
    Q_OBJECT
    std::shared_ptr<const LmModel> m_lm;

  private slots:
    void initTestCase() { m_lm = loadLm(kLm); }

    void configComesFromTheFile() {
        const LmConfig& c = config(*m_lm);
        QCOMPARE(c.vocab, i64(4000));
        QCOMPARE(c.dim, i64(128));
        QCOMPARE(c.depth, i64(4));
        QCOMPARE(c.heads, i64(4));
        QCOMPARE(c.hidden, i64(512));
        QCOMPARE(c.context, i64(128));
        QCOMPARE(c.eps, 1e-5);
        QCOMPARE(c.vocabulary[0], std::string("<unk>"));
        QVERIFY(isLanguageModel(kLm));
        QVERIFY(!isLanguageModel(QMPP_SOURCE_DIR "/resources/models/vit-fmnist.safetensors"));
    }

    // The words of the sample text give the ids the training script encoded.
    void tokenizerMatchesTheTrainingScript() {
        std::vector<std::string> words;
        const std::vector<i64> ids = tokenizeLm(*m_lm, readText(kPsalm), &words);
        QCOMPARE(ids, fixtureIds());
        QCOMPARE(words.front(), std::string("The"));
        QCOMPARE(tokenizeLm(*m_lm, "thou art zzzqqq, Lord's"),
                 (std::vector<i64>{tokenizeLm(*m_lm, "thou")[0], tokenizeLm(*m_lm, "art")[0], 0,
                                   tokenizeLm(*m_lm, ",")[0], tokenizeLm(*m_lm, "lord's")[0]}));
    }

    // Unmerged: every position's loss and the last rows' logits equal the training script's.
    void forwardEqualsTheTrainingScript() {
        const std::vector<i64> ids = fixtureIds();
        const LmResult r = lmForward(*m_lm, ids);
        const std::vector<double> ce = readNpy(kFix + "kjv_psalm23_ce.npy").toDouble();
        QCOMPARE(r.nll.size(), ce.size());
        for (std::size_t i = 0; i < ce.size(); ++i)
            QVERIFY2(std::fabs(r.nll[i] - ce[i]) <= 1e-4 * std::max(1.0, ce[i]),
                     qPrintable(QString("position %1: %2 vs %3").arg(i).arg(r.nll[i]).arg(ce[i])));
        const std::vector<double> tail = readNpy(kFix + "kjv_psalm23_logits_tail.npy").toDouble();
        const i64 v = config(*m_lm).vocab, n = i64(ids.size());
        double err = 0, scale = 0;
        for (i64 i = 0; i < 16; ++i)
            for (i64 w = 0; w < v; ++w) {
                err = std::max(err, std::fabs(r.logits[(n - 16 + i) * v + w] - tail[i * v + w]));
                scale = std::max(scale, std::fabs(tail[i * v + w]));
            }
        QVERIFY2(err / scale <= 1e-4, qPrintable(QString::number(err / scale)));
    }

    // K = T groups is no merge at all: the following tokens' rows equal the plain run's.
    void prefixOfSingletonsChangesNothing() {
        const std::vector<i64> ids = fixtureIds();
        const LmResult plain = lmForward(*m_lm, ids);
        const i64 v = config(*m_lm).vocab, t = 40;
        for (ModelMethod m : {ModelMethod::QuickMerge, ModelMethod::Random}) {
            const LmResult same = lmForward(*m_lm, ids, prefixMerge(m, 1, t, t));
            QCOMPARE(same.positions.front(), t);
            QCOMPARE(i64(same.logits.size()), (i64(ids.size()) - t) * v);
            for (std::size_t i = 0; i < same.logits.size(); ++i)
                QVERIFY(std::fabs(same.logits[i] - plain.logits[t * v + i]) <= 1e-4);
        }
    }

    // Groups keep the text's order, take their last member's position, and no query sees
    // the future: changing the last word leaves every earlier row as it was.
    void prefixCompressionKeepsOrderAndCausality() {
        std::vector<i64> ids = fixtureIds();
        const i64 t = 60, k = 12, n = i64(ids.size());
        for (ModelMethod m : {ModelMethod::QuickMerge, ModelMethod::Random})
            for (i64 block : {i64(0), i64(2), i64(3)}) {
                const PrefixMerge pm = prefixMerge(m, block, t, k, 5);
                const LmResult a = lmForward(*m_lm, ids, pm);
                QCOMPARE(i64(a.groupOf.size()), t);
                // order: the groups' first members ascend with the group index
                std::vector<i64> first(static_cast<std::size_t>(k), -1);
                for (i64 i = 0; i < t; ++i)
                    if (a.groupOf[i] >= 0 && first[a.groupOf[i]] < 0) first[a.groupOf[i]] = i;
                for (i64 g = 1; g < k; ++g)
                    QVERIFY(first[g] > first[g - 1]);
                QCOMPARE(i64(a.positions.size()), n - t);
                QCOMPARE(a.nll.size(), std::size_t(n - t - 1));
                std::vector<i64> other = ids;
                other.back() = (other.back() + 7) % config(*m_lm).vocab;
                const LmResult b = lmForward(*m_lm, other, pm);
                const i64 v = config(*m_lm).vocab;
                for (i64 i = 0; i < (n - t - 1) * v; ++i)
                    QCOMPARE(a.logits[i], b.logits[i]);
                // the same seed gives the same groups; another seed other ones
                QCOMPARE(lmForward(*m_lm, ids, pm).groupOf, a.groupOf);
                if (m == ModelMethod::Random)
                    QVERIFY(lmForward(*m_lm, ids, prefixMerge(m, block, t, k, 6)).groupOf !=
                            a.groupOf);
            }
        // bad settings are input errors naming the rule
        for (const PrefixMerge& bad : {prefixMerge(ModelMethod::QuickMerge, 0, 0, 1),
                                       prefixMerge(ModelMethod::QuickMerge, 0, n, 4),
                                       prefixMerge(ModelMethod::QuickMerge, 0, 10, 11),
                                       prefixMerge(ModelMethod::QuickMerge, 4, 10, 5),
                                       prefixMerge(ModelMethod::ToMe, 0, 10, 5)})
            QVERIFY_THROWS_EXCEPTION(InputError, lmForward(*m_lm, ids, bad));
        QVERIFY_THROWS_EXCEPTION(InputError, lmForward(*m_lm, std::vector<i64>(129, 1)));
        QVERIFY_THROWS_EXCEPTION(InputError, lmForward(*m_lm, std::vector<i64>{1, 4000}));
    }

    void badModelFilesNameTheProblem() {
        QTemporaryDir dir;
        const TensorFile good = readSafetensors(kLm);
        auto without = [&](const std::string& name) {
            TensorFile f = good;
            for (auto it = f.tensors.begin(); it != f.tensors.end(); ++it)
                if (it->first == name) {
                    f.tensors.erase(it);
                    break;
                }
            return f;
        };
        for (const char* name : {"tok.weight", "pos.weight", "blocks.2.attn.in_proj_weight",
                                 "blocks.0.ff.2.bias", "ln.bias"}) {
            const std::string e = loadError(without(name), dir.path(), "missing.safetensors");
            QVERIFY2(e.find(name) != std::string::npos &&
                         e.find("missing.safetensors") != std::string::npos,
                     e.c_str());
        }
        { // a wrong shape names the tensor
            TensorFile f = good;
            for (auto& [n, a] : f.tensors)
                if (n == "blocks.1.attn.out_proj.weight") {
                    a.shape = {64, 256};
                }
            const std::string e = loadError(f, dir.path(), "shape.safetensors");
            QVERIFY2(e.find("blocks.1.attn.out_proj.weight") != std::string::npos, e.c_str());
        }
        struct Meta {
            const char* key;
            const char* value;
            const char* says;
        };
        for (const Meta& m :
             {Meta{"num_heads", "3", "num_heads"}, Meta{"num_heads", "x", "num_heads"},
              Meta{"vocabulary", "[\"a\", \"b\"]", "vocabulary"},
              Meta{"vocabulary", "{", "vocabulary"}, Meta{"layer_norm_eps", "-1", "layer_norm_eps"},
              Meta{"tokenizer", "([a-z", "tokenizer"}, Meta{"kind", "vit", "causal-lm"}}) {
            TensorFile f = good;
            f.metadata[m.key] = m.value;
            const std::string e = loadError(f, dir.path(), "meta.safetensors");
            QVERIFY2(e.find(m.says) != std::string::npos, e.c_str());
        }
    }

    // `qmpp eval` on a text: the plain loss is the fixture's over the same positions, and
    // every output is written.
    void cliEvalOnAText() {
        QTemporaryDir dir;
        const QString out = dir.path() + "/lm";
        const auto r = test::runQmpp({"eval", "--model", QString::fromStdString(kLm),
                                      QString::fromStdString(kPsalm), "--prefix", "50", "--groups",
                                      "10", "--at-block", "1", "--seeds", "0,1,2", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile f(out + "/eval.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject j = QJsonDocument::fromJson(f.readAll()).object();
        const std::vector<double> ce = readNpy(kFix + "kjv_psalm23_ce.npy").toDouble();
        double sum = 0;
        for (std::size_t p = 50; p < ce.size(); ++p)
            sum += ce[p];
        const double want = sum / double(ce.size() - 50);
        QVERIFY(std::fabs(j["ce_plain"].toDouble() - want) <= 1e-4);
        QCOMPARE(j["positions"].toInt(), int(ce.size() - 50));
        QCOMPARE(j["seeds"].toArray().size(), 3);
        QCOMPARE(j["merge"].toObject()["groups"].toInt(), 10);
        QVERIFY(j["flops_per_window"].toObject()["merged"].toDouble() <
                j["flops_per_window"].toObject()["plain"].toDouble());
        for (const char* file : {"measures.csv", "nll_plain.npy", "nll_merged.npy"})
            QVERIFY(QFile::exists(out + "/" + file));
        QCOMPARE(readNpy((out + "/nll_merged.npy").toStdString()).shape,
                 (std::vector<std::int64_t>{3, std::int64_t(ce.size() - 50)}));
        // qmpp report renders it and recomputes the losses; a changed loss file fails
        const auto rep = test::runQmpp({"report", out});
        QVERIFY2(rep.code == 0 && rep.out.contains("verified"), qPrintable(rep.out + rep.err));
        std::vector<double> nll = readNpy((out + "/nll_plain.npy").toStdString()).toDouble();
        std::vector<float> bent(nll.begin(), nll.end());
        bent[0] += 50.0f;
        writeNpy((out + "/nll_plain.npy").toStdString(),
                 NdArray::fromFloat(bent, {std::int64_t(bent.size())}));
        const auto bad = test::runQmpp({"report", out, "--out", dir.path() + "/bad.html"});
        QCOMPARE(bad.code, 4);
        QVERIFY2(bad.out.contains("FAILED: plain cross-entropy"), qPrintable(bad.out));
        // bad options are usage errors; nothing is written
        for (const QStringList& bad :
             {QStringList{"--prefix", "200"}, QStringList{"--groups", "80", "--prefix", "40"},
              QStringList{"--method", "tome"}, QStringList{"--r", "8"},
              QStringList{"--groups", "4", "--budget", "0.5"}, QStringList{"--at-block", "9"}}) {
            QStringList args = {"eval",
                                "--model",
                                QString::fromStdString(kLm),
                                QString::fromStdString(kPsalm),
                                "--out",
                                dir.path() + "/bad"};
            args += bad;
            const auto b = test::runQmpp(args);
            QVERIFY2(b.code == 2, qPrintable(bad.join(' ') + ": " + b.err));
            QVERIFY(!QDir(dir.path() + "/bad").exists());
        }
        // a text too short for the prefix is bad input naming the file
        const QString tiny = dir.path() + "/tiny.txt";
        QFile t(tiny);
        QVERIFY(t.open(QIODevice::WriteOnly));
        t.write("the lord is");
        t.close();
        const auto s = test::runQmpp({"eval", "--model", QString::fromStdString(kLm), tiny,
                                      "--prefix", "8", "--out", dir.path() + "/tiny"});
        QCOMPARE(s.code, 3);
        QVERIFY2(s.err.contains("words"), qPrintable(s.err));
    }
};

QTEST_GUILESS_MAIN(TestLm)
#include "tst_lm.moc"
