// What the Model page draws (explain.h): rollout through merges against cases computed by hand,
// head fusion, Spearman's rank correlation, and the forward's trace against the forward itself.
#include "modeltest.h"
#include "testutil.h"

#include "qmpp/explain.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"
#include "qmpp/vit.h"

#include <cmath>

using namespace qmpp;
using test::hook;

namespace {

const std::string kModel = QMPP_SOURCE_DIR "/resources/models/vit-fmnist.safetensors";
const std::string kFix = QMPP_FIXTURES "/model/";

BlockTrace block(i64 t, std::vector<float> attention, std::vector<std::int32_t> owner,
                 std::vector<std::int32_t> newRow, std::vector<float> weight, i64 tokensOut) {
    BlockTrace b;
    b.tokens = t;
    b.attention = std::move(attention);
    b.owner = std::move(owner);
    b.newRow = std::move(newRow);
    b.weight = std::move(weight);
    b.tokensOut = tokensOut;
    b.counts.assign(static_cast<std::size_t>(t), 1.0f);
    b.entropy.assign(static_cast<std::size_t>(t), 0.0);
    return b;
}

// Two patches, one head. Block 0 keeps three tokens and then merges rows 1 and 2 with weights
// 1 and 3; block 1 sees two tokens.
ForwardTrace handTrace() {
    ForwardTrace tr;
    tr.blocks.push_back(block(3, {0.5f, 0.3f, 0.2f, 0.2f, 0.6f, 0.2f, 0.1f, 0.1f, 0.8f}, {1, 2},
                              {0, 1, 1}, {1.0f, 1.0f, 3.0f}, 2));
    tr.blocks.push_back(block(2, {0.4f, 0.6f, 0.3f, 0.7f}, {1, 1}, {0, 1}, {1.0f, 1.0f}, 2));
    return tr;
}

} // namespace

class TestExplain : public QObject {
    Q_OBJECT
  private slots:
    // By hand: block 0, a = (A + I) / 2 (rows already sum to 1), so the class row is
    // (0.75, 0.15, 0.1). The merge makes row 1 = (1 (0.1, 0.8, 0.1) + 3 (0.05, 0.05, 0.9)) / 4
    // = (0.0625, 0.2375, 0.7). Block 1: a row 0 = (0.7, 0.3), so the class row is
    // 0.7 (0.75, 0.15, 0.1) + 0.3 (0.0625, 0.2375, 0.7) = (0.54375, 0.17625, 0.28).
    void rolloutFollowsTheMerges() {
        const ForwardTrace tr = handTrace();
        const Rollout ro = rollout(tr, 1, 2, HeadFusion::Mean, 0.0);
        QCOMPARE(ro.patches.size(), std::size_t(2));
        QVERIFY(std::fabs(ro.patches[0][0] - 0.15) < 1e-7);
        QVERIFY(std::fabs(ro.patches[0][1] - 0.1) < 1e-7);
        QVERIFY(std::fabs(ro.patches[1][0] - 0.17625) < 1e-7);
        QVERIFY(std::fabs(ro.patches[1][1] - 0.28) < 1e-7);
        // per token: both patches belong to row 1 at block 1
        QCOMPARE(ro.tokens[1].size(), std::size_t(2));
        QVERIFY(std::fabs(ro.tokens[1][1] - 0.45625) < 1e-7);
        QCOMPARE(ro.tokens[1][0], 0.0);
    }

    // Discarding a third of block 0's nine entries drops the three smallest: (2,0), (2,1) and,
    // of the tied 0.2s, the first, (0,2). Row 0 becomes (0.75, 0.15, 0) / 0.9.
    void rolloutDiscardsTheSmallestButNeverTheClassEntry() {
        ForwardTrace tr = handTrace();
        tr.blocks.pop_back();
        const Rollout ro = rollout(tr, 1, 2, HeadFusion::Mean, 0.34);
        QVERIFY(std::fabs(ro.patches[0][0] - 0.15 / 0.9) < 1e-7);
        QCOMPARE(ro.patches[0][1], 0.0);
        // all of it: every entry but the class token's own is dropped
        const Rollout all = rollout(tr, 1, 2, HeadFusion::Mean, 1.0);
        QCOMPARE(all.patches[0][0], 0.0);
        QCOMPARE(all.patches[0][1], 0.0);
    }

    void headsFuseByMeanMaxAndMin() {
        BlockTrace b = block(2, {0.2f, 0.8f, 0.5f, 0.5f, 0.6f, 0.4f, 0.1f, 0.9f}, {1}, {0, 1},
                             {1.0f, 1.0f}, 2);
        const std::vector<double> mean = fuseHeads(b, 2, HeadFusion::Mean);
        const std::vector<double> mx = fuseHeads(b, 2, HeadFusion::Max);
        const std::vector<double> mn = fuseHeads(b, 2, HeadFusion::Min);
        const double want[3][4] = {
            {0.4, 0.6, 0.3, 0.7}, {0.6, 0.8, 0.5, 0.9}, {0.2, 0.4, 0.1, 0.5}};
        for (int k = 0; k < 4; ++k) {
            QVERIFY(std::fabs(mean[k] - want[0][k]) < 1e-7);
            QVERIFY(std::fabs(mx[k] - want[1][k]) < 1e-7);
            QVERIFY(std::fabs(mn[k] - want[2][k]) < 1e-7);
        }
        // one row of one head, and the heads' mean
        const std::vector<double> h1 = tokenAttention(b, 2, 1, 1), avg = tokenAttention(b, 2, 1);
        QVERIFY(std::fabs(h1[0] - 0.1) < 1e-7 && std::fabs(h1[1] - 0.9) < 1e-7);
        QVERIFY(std::fabs(avg[0] - 0.3) < 1e-7 && std::fabs(avg[1] - 0.7) < 1e-7);
        HeadFusion f;
        QVERIFY(parse("max", f) && f == HeadFusion::Max);
        QVERIFY(!parse("median", f));
    }

    // Ranks of (1, 3, 2, 2) are (1, 4, 2.5, 2.5): rho = 1.5 / sqrt(5 * 4.5).
    void spearmanRanksWithTies() {
        QVERIFY(std::fabs(spearman({1, 2, 3, 4}, {1, 3, 2, 2}) - 1.5 / std::sqrt(22.5)) < 1e-12);
        QCOMPARE(spearman({1, 2, 3}, {10, 20, 300}), 1.0);
        QCOMPARE(spearman({1, 2, 3}, {3, 2, 1}), -1.0);
        QVERIFY(std::isnan(spearman({1, 2, 3}, {5, 5, 5})));
        QVERIFY(std::isnan(spearman({1}, {2})));
    }

    // The trace of the bundled model: it changes nothing, and what it holds agrees with the
    // forward's own bookkeeping for every method.
    void traceAgreesWithTheForward() {
        const auto m = loadVit(kModel);
        const VitConfig& c = config(*m);
        const std::vector<float> pix = readNpy(kFix + "fmnist16_pixels.npy").toFloat();
        for (ModelMethod meth : {ModelMethod::None, ModelMethod::QuickMerge, ModelMethod::ToMe,
                                 ModelMethod::TopK, ModelMethod::Random}) {
            const HookParams hp = hook(meth, constantSchedule(16), 3);
            ForwardTrace tr;
            ForwardOptions opt;
            opt.trace = &tr;
            const ForwardResult plain = vitForward(*m, pix.data(), hp);
            const ForwardResult traced = vitForward(*m, pix.data(), hp, 0, opt);
            QCOMPARE(traced.logits, plain.logits); // bit for bit
            QCOMPARE(i64(tr.blocks.size()), c.depth);
            for (i64 l = 0; l < c.depth; ++l) {
                const BlockTrace& b = tr.blocks[l];
                QCOMPARE(b.tokens, traced.blocks[l].tokensIn);
                QCOMPARE(b.tokensOut, traced.blocks[l].tokensOut);
                QCOMPARE(i64(b.attention.size()), c.heads * b.tokens * b.tokens);
                for (i64 row = 0; row < c.heads * b.tokens; row += 7) {
                    double sum = 0;
                    for (i64 j = 0; j < b.tokens; ++j)
                        sum += b.attention[row * b.tokens + j];
                    QVERIFY(std::fabs(sum - 1.0) < 1e-5);
                }
                // the source map moves by the block's merge
                const std::vector<std::int32_t> next =
                    l + 1 < c.depth ? tr.blocks[l + 1].owner : traced.owner;
                for (std::size_t p = 0; p < b.owner.size(); ++p)
                    QCOMPARE(next[p], b.owner[p] < 0 ? -1 : b.newRow[b.owner[p]]);
                QVERIFY(b.ms >= 0);
            }
            // top-K keeps exactly the class token's most attended rows of the trace
            if (meth == ModelMethod::TopK) {
                const BlockTrace& b = tr.blocks[0];
                const std::vector<double> cls = tokenAttention(b, c.heads, 0);
                double keptMin = 1e9, droppedMax = -1;
                for (i64 i = 1; i < b.tokens; ++i)
                    (b.newRow[i] >= 0 ? keptMin : droppedMax) =
                        b.newRow[i] >= 0 ? std::min(keptMin, cls[i]) : std::max(droppedMax, cls[i]);
                QVERIFY(keptMin >= droppedMax);
            }
            const Rollout ro = rollout(tr, c.heads, c.patches, HeadFusion::Mean, 0.9);
            const SaliencyAgreement ag = saliencyAgreement(tr, c.heads, ro);
            QCOMPARE(i64(ag.withClassAttention.size()), c.depth);
            for (double v : ag.withClassAttention)
                QVERIFY(std::isnan(v) || (v >= -1 && v <= 1));
            // the class row keeps its mass where patches survive: pruning loses some
            double mass = 0;
            for (double v : ro.patches.back())
                mass += v;
            QVERIFY(mass > 0 && mass <= 1 + 1e-9);
        }
    }
};

QTEST_GUILESS_MAIN(TestExplain)
#include "tst_explain.moc"
