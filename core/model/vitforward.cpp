// vitForward (vit.h): timm's VisionTransformer forward on the CPU, with the merge hook of
// hook.cpp between attention and MLP. Products go through the engine's packed GEMM; every
// output element is one sequential sum, so logits do not depend on the thread count.
#include "clones.h"
#include "parallel.h"
#include "qmpp/hook.h"
#include "vitmodel.h"

#include "fastmath.h"
#include "qmpp/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

namespace qmpp {

namespace {

QMPP_CLONES void geluInPlace(float* x, i64 n) {
    i64 i = 0;
    for (; i + 8 <= n; i += 8)
        fast::store8(x + i, fast::gelu(fast::load8(x + i)));
    for (; i < n; ++i)
        x[i] = fast::gelu(x[i]);
}

// rows of `cols` values each: v += b per row; with `to`, to += v + b instead.
QMPP_CLONES void addBias(float* v, i64 n, i64 cols, const float* b, float* to) {
    for (i64 i0 = 0; i0 < n; i0 += cols) {
        float* row = v + i0;
        if (to) {
            float* t = to + i0;
            for (i64 j = 0; j < cols; ++j)
                t[j] += row[j] + b[j];
        } else {
            for (i64 j = 0; j < cols; ++j)
                row[j] += b[j];
        }
    }
}

// This thread's share of m rows: contiguous, in multiples of the GEMM's 6-row tile, so two
// threads split 197 rows 102 / 95 (blocks of 48 rows would split them 144 / 53).
void myRows(i64 m, i64& r0, i64& r1) {
    const i64 nt = par::threadCount(), tid = par::threadId();
    const i64 per = ((m + nt - 1) / nt + 5) / 6 * 6;
    r0 = std::min(m, tid * per);
    r1 = std::min(m, r0 + per);
}

} // namespace

// LayerNorm of one row (eps from the norm: 1e-6 in timm's ViT), statistics in double
void layerNormRow(const Norm& n, const float* xi, i64 d, float* yi) {
    double s = 0, s2 = 0;
    for (i64 j = 0; j < d; ++j)
        s += xi[j];
    const double mean = s / d;
    for (i64 j = 0; j < d; ++j)
        s2 += (xi[j] - mean) * (xi[j] - mean);
    const float inv = static_cast<float>(1.0 / std::sqrt(s2 / d + n.eps));
    const float mu = static_cast<float>(mean);
    for (i64 j = 0; j < d; ++j)
        yi[j] = (xi[j] - mu) * inv * n.w[j] + n.b[j];
}

// y [m, out] = norm(x) [m, in] W^T + b, with `norm` LayerNorm first when given (each thread
// normalizes its own rows). BiasGelu: then GELU; BiasAddTo: y += that instead (the residual
// add). Rows split across the team.
void linear(const Linear& l, const float* x, i64 m, float* y, Epilogue ep, const Norm* norm) {
    const bool add = ep == Epilogue::BiasAddTo;
    // scratch, uninitialized, allocated before the region (see parallel.h)
    std::unique_ptr<float[]> out(add ? new float[static_cast<std::size_t>(m * l.out)] : nullptr);
    std::unique_ptr<float[]> normed(norm ? new float[static_cast<std::size_t>(m * l.in)] : nullptr);
#pragma omp parallel
    {
        i64 r0 = 0, r1 = 0;
        myRows(m, r0, r1);
        if (r1 > r0) {
            const float* a = x + r0 * l.in;
            if (norm) {
                for (i64 i = r0; i < r1; ++i)
                    layerNormRow(*norm, x + i * l.in, l.in, normed.get() + i * l.in);
                a = normed.get() + r0 * l.in;
            }
            float* dst = (add ? out.get() : y) + r0 * l.out;
            gemmPacked(a, r1 - r0, l.w, dst);
            const i64 n = (r1 - r0) * l.out;
            addBias(dst, n, l.out, l.b.data(), add ? y + r0 * l.out : nullptr);
            if (ep == Epilogue::BiasGelu) geluInPlace(dst, n);
        }
    }
}

// One row of softmax in place; returns the row's entropy when asked: with e_j = exp(z_j - max)
// and S their sum, H = -sum p ln p = ln S - (sum e_j (z_j - max)) / S, no logarithm per element.
QMPP_CLONES double softmaxRow(float* z, i64 n, bool entropy) {
    float mx = z[0];
    for (i64 j = 1; j < n; ++j)
        mx = std::max(mx, z[j]);
    // eight partial sums, then the tail: a fixed order whatever the vector width
    fast::v8f acc = {}, accEz = {};
    i64 j = 0;
    for (; j + 8 <= n; j += 8) {
        const fast::v8f zj = fast::load8(z + j) - mx;
        const fast::v8f e = fast::expNonPositive(zj);
        fast::store8(z + j, e);
        acc += e;
        accEz += e * zj;
    }
    double sum = 0, ez = 0;
    for (int l = 0; l < 8; ++l) {
        sum += acc[l];
        ez += accEz[l];
    }
    for (; j < n; ++j) {
        const float zj = z[j] - mx;
        z[j] = fast::expNonPositive(zj);
        sum += z[j];
        ez += double(z[j]) * zj;
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (j = 0; j < n; ++j)
        z[j] *= inv;
    return entropy ? std::max(0.0, std::log(sum) - ez / sum) : 0.0;
}

namespace {

// Multi-head attention of norm1(x) [T, D] -> out [T, D], before the projection.
// qkv [T, 3D] is kept: the hook reads the keys. Logit bias ln c_j for each key (counts null:
// none). Fills, when asked, each query's entropy averaged over heads (entropy [T]) and the
// class token's attention over the keys averaged over heads (clsAttn [T]), and every head's
// attention (probs [heads, T, T]).
void attention(const VitBlock& blk, const VitConfig& c, const float* x, i64 t, const float* counts,
               std::vector<float>& qkv, std::vector<float>& out, double* entropy, double* clsAttn,
               float* probs) {
    const i64 d = c.dim, nh = c.heads, dh = d / nh;
    qkv.resize(static_cast<std::size_t>(t * 3 * d));
    linear(blk.qkv, x, t, qkv.data(), Epilogue::Bias, &blk.norm1);
    out.resize(static_cast<std::size_t>(t * d));
    const float scale = 1.0f / std::sqrt(float(dh));
    std::vector<float> bias(static_cast<std::size_t>(t), 0.0f);
    if (counts)
        for (i64 j = 0; j < t; ++j)
            bias[j] = std::log(counts[j]);
    // per-head entropies and class attention only when the hook asked (the plain forward and
    // the slider path of other methods skip them)
    std::vector<double> ent(entropy ? static_cast<std::size_t>(nh * t) : 0, 0.0);
    std::vector<double> cls(clsAttn ? static_cast<std::size_t>(nh * t) : 0, 0.0);
    // keys as rows and values transposed (A.V = A (v^T)^T), packed once per head
    std::vector<PackedRows> kp(static_cast<std::size_t>(nh)), vp(kp.size());
    {
        std::vector<float> k(static_cast<std::size_t>(t * dh)), vt(k.size());
        for (i64 hd = 0; hd < nh; ++hd) {
            for (i64 i = 0; i < t; ++i)
                for (i64 f = 0; f < dh; ++f) {
                    k[i * dh + f] = qkv[i * 3 * d + d + hd * dh + f];
                    vt[f * t + i] = qkv[i * 3 * d + 2 * d + hd * dh + f];
                }
            kp[hd] = packRows(k.data(), t, dh);
            vp[hd] = packRows(vt.data(), dh, t);
        }
    }
    // every thread's scratch, allocated here (see parallel.h): scores, queries, outputs
    const std::size_t each = static_cast<std::size_t>(kRowBlock * (t + 2 * dh));
    std::vector<float> scratchAll(each * static_cast<std::size_t>(par::maxThreads()));
#pragma omp parallel
    {
        float* const s = scratchAll.data() + each * std::size_t(par::threadId());
        float* const q = s + kRowBlock * t;
        float* const o = q + kRowBlock * dh;
        i64 r0 = 0, r1 = 0;
        myRows(t, r0, r1);
        for (i64 hd = 0; hd < nh; ++hd)
            for (i64 i0 = r0; i0 < r1; i0 += kRowBlock) {
                const i64 rows = std::min(kRowBlock, r1 - i0);
                for (i64 r = 0; r < rows; ++r)
                    for (i64 f = 0; f < dh; ++f)
                        q[r * dh + f] = qkv[(i0 + r) * 3 * d + hd * dh + f] * scale;
                gemmPacked(q, rows, kp[hd], s);
                for (i64 r = 0; r < rows; ++r) {
                    float* row = s + r * t;
                    if (counts)
                        for (i64 j = 0; j < t; ++j)
                            row[j] += bias[j];
                    const double h = softmaxRow(row, t, entropy != nullptr);
                    if (entropy) ent[std::size_t(hd * t + i0 + r)] = h;
                    if (i0 + r == 0 && clsAttn)
                        for (i64 j = 0; j < t; ++j)
                            cls[hd * t + j] = row[j];
                    if (probs) std::copy(row, row + t, probs + (hd * t + i0 + r) * t);
                }
                gemmPacked(s, rows, vp[hd], o);
                for (i64 r = 0; r < rows; ++r)
                    std::copy(o + r * dh, o + (r + 1) * dh, out.data() + (i0 + r) * d + hd * dh);
            }
    }
    if (entropy) meanOverHeads(ent, nh, t, entropy);
    if (clsAttn) meanOverHeads(cls, nh, t, clsAttn);
}

} // namespace

double vitFlops(const VitConfig& c, const std::vector<BlockStat>& blocks) {
    const double d = double(c.dim);
    double f = 2.0 * c.patches * d * double(c.channels * c.patch * c.patch) + 2.0 * d * c.classes;
    for (const BlockStat& b : blocks)
        f += b.flops;
    return f;
}

ForwardResult vitForward(const VitModel& m, const float* pixels, const HookParams& hp, i64 item,
                         const ForwardOptions& opt) {
    const VitConfig& c = m.cfg;
    const i64 d = c.dim, n = c.patches, p = c.patch, cpp = c.channels * p * p;
    ForwardResult res;
    // the team size: the whole forward's multiply-adds decide it (small models run on one core)
    const double work = double(c.depth) * double(n + 1) * double(d) *
                        (4.0 * double(d) + 2.0 * double(c.hidden) + 2.0 * double(n + 1));
    par::useThreadsFor(opt.threads == 1 ? 0.0 : work);

    // patch embedding: im2col in (c, py, px) order, as the weight [D, C, P, P]
    std::vector<float> cols(static_cast<std::size_t>(n * cpp));
    for (i64 gy = 0; gy < c.grid; ++gy)
        for (i64 gx = 0; gx < c.grid; ++gx) {
            float* dst = cols.data() + (gy * c.grid + gx) * cpp;
            for (i64 ch = 0; ch < c.channels; ++ch)
                for (i64 py = 0; py < p; ++py)
                    for (i64 px = 0; px < p; ++px)
                        *dst++ =
                            pixels[(ch * c.imageSize + gy * p + py) * c.imageSize + gx * p + px];
        }
    std::vector<float> x(static_cast<std::size_t>((n + 1) * d));
    linear(m.patch, cols.data(), n, x.data() + d);
    std::copy(m.cls.begin(), m.cls.end(), x.begin());
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] += m.pos[i];

    HookState st(c, hp, item, opt.keepSources || opt.trace);
    std::vector<float> qkv, att, mlp;
    std::vector<double> entropy, clsAttn;
    if (opt.trace) opt.trace->blocks.clear();
    for (i64 l = 0; l < c.depth; ++l) {
        const auto t0 = std::chrono::steady_clock::now();
        const VitBlock& blk = m.blocks[static_cast<std::size_t>(l)];
        const i64 t = st.tokens();
        BlockStat bs;
        bs.tokensIn = t;
        const i64 r = st.mergeCount(l);
        const HookNeeds needs = hookNeeds(hp.method, r);
        const bool wantEntropy = needs.entropy || opt.trace;
        entropy.assign(wantEntropy ? static_cast<std::size_t>(t) : 0, 0.0);
        clsAttn.assign(needs.clsAttn ? static_cast<std::size_t>(t) : 0, 0.0);
        BlockTrace* bt = nullptr;
        if (opt.trace) {
            bt = &opt.trace->blocks.emplace_back();
            bt->tokens = t;
            bt->owner = st.owner();
            bt->counts = st.counts();
            bt->attention.assign(static_cast<std::size_t>(c.heads * t * t), 0.0f);
        }
        attention(blk, c, x.data(), t, st.countsOrNull(), qkv, att,
                  wantEntropy ? entropy.data() : nullptr, needs.clsAttn ? clsAttn.data() : nullptr,
                  bt ? bt->attention.data() : nullptr);
        linear(blk.proj, att.data(), t, x.data(), Epilogue::BiasAddTo);
        if (r > 0) {
            MergePlan p = st.apply(l, r, x, qkv, entropy, clsAttn);
            if (bt) {
                bt->newRow = std::move(p.newRow);
                bt->weight = std::move(p.weight);
            }
        } else if (bt) {
            bt->newRow.resize(static_cast<std::size_t>(t));
            for (i64 i = 0; i < t; ++i)
                bt->newRow[i] = static_cast<std::int32_t>(i);
            bt->weight.assign(static_cast<std::size_t>(t), 1.0f);
        }
        const i64 t2 = st.tokens();
        bs.tokensOut = t2;
        mlp.resize(static_cast<std::size_t>(t2 * c.hidden));
        linear(blk.fc1, x.data(), t2, mlp.data(), Epilogue::BiasGelu, &blk.norm2);
        linear(blk.fc2, mlp.data(), t2, x.data(), Epilogue::BiasAddTo);
        bs.flops = blockFlops(c, t, t2);
        res.blocks.push_back(bs);
        if (bt) {
            bt->entropy = entropy;
            bt->tokensOut = t2;
            bt->ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
        }
    }
    res.logits.resize(static_cast<std::size_t>(c.classes));
    linear(m.head, x.data(), 1, res.logits.data(), Epilogue::Bias, &m.norm); // the class token
    res.flops = vitFlops(c, res.blocks);
    if (opt.keepSources || opt.trace) {
        res.owner = st.owner();
        res.counts = st.counts();
    }
    return res;
}

} // namespace qmpp
