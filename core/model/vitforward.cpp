// vitForward (vit.h): timm's VisionTransformer forward on the CPU, with the merge hook of
// hook.cpp between attention and MLP. Products go through the engine's packed GEMM; every
// output element is one sequential sum, so logits do not depend on the thread count.
#include "hook.h"
#include "parallel.h"
#include "vitmodel.h"

#include "fastmath.h"
#include "qmpp/error.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define QMPP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define QMPP_CLONES
#endif

namespace qmpp {

namespace {

// y [m, out] = x [m, in] W^T + b
void linear(const Linear& l, const float* x, i64 m, float* y) {
    const i64 blocks = (m + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
    for (i64 b = 0; b < blocks; ++b) {
        const i64 i0 = b * kRowBlock, rows = std::min(kRowBlock, m - i0);
        gemmPacked(x + i0 * l.in, rows, l.w, y + i0 * l.out);
        for (i64 r = 0; r < rows; ++r) {
            float* row = y + (i0 + r) * l.out;
            for (i64 j = 0; j < l.out; ++j)
                row[j] += l.b[j];
        }
    }
}

// LayerNorm, eps 1e-6, statistics in double
void layerNorm(const Norm& n, const float* x, i64 m, i64 d, float* y) {
    for (i64 i = 0; i < m; ++i) {
        const float* xi = x + i * d;
        double s = 0, s2 = 0;
        for (i64 j = 0; j < d; ++j)
            s += xi[j];
        const double mean = s / d;
        for (i64 j = 0; j < d; ++j)
            s2 += (xi[j] - mean) * (xi[j] - mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(s2 / d + 1e-6));
        const float mu = static_cast<float>(mean);
        float* yi = y + i * d;
        for (i64 j = 0; j < d; ++j)
            yi[j] = (xi[j] - mu) * inv * n.w[j] + n.b[j];
    }
}

QMPP_CLONES void geluInPlace(float* x, i64 n) {
    for (i64 i = 0; i < n; ++i)
        x[i] = fast::gelu(x[i]);
}

// One row of softmax in place; returns the row's entropy when asked (-sum p ln p).
QMPP_CLONES double softmaxRow(float* z, i64 n, bool entropy) {
    float mx = z[0];
    for (i64 j = 1; j < n; ++j)
        mx = std::max(mx, z[j]);
    float sum = 0;
    for (i64 j = 0; j < n; ++j) {
        z[j] = fast::expNonPositive(z[j] - mx);
        sum += z[j];
    }
    const float inv = 1.0f / sum;
    double h = 0;
    if (entropy) {
        // H = ln(sum) - sum_j p_j (z_j - max); p ln p with p = e_j / sum
        const double lnSum = std::log(double(sum));
        for (i64 j = 0; j < n; ++j) {
            const double p = double(z[j]) * inv;
            if (p > 0) h -= p * (std::log(double(z[j])) - lnSum);
        }
    }
    for (i64 j = 0; j < n; ++j)
        z[j] *= inv;
    return h;
}

// Multi-head attention of h [T, D] (already normalized) -> out [T, D], before the projection.
// qkv [T, 3D] is kept: the hook reads the keys. Logit bias ln c_j for each key (counts null:
// none). Fills, when asked, each non-class query's entropy averaged over heads (entropy [T])
// and the class token's attention over the keys averaged over heads (clsAttn [T]).
void attention(const VitBlock& blk, const VitConfig& c, const float* h, i64 t, const float* counts,
               std::vector<float>& qkv, std::vector<float>& out, double* entropy, double* clsAttn) {
    const i64 d = c.dim, nh = c.heads, dh = d / nh;
    qkv.resize(static_cast<std::size_t>(t * 3 * d));
    linear(blk.qkv, h, t, qkv.data());
    out.assign(static_cast<std::size_t>(t * d), 0.0f);
    const float scale = 1.0f / std::sqrt(float(dh));
    std::vector<float> bias(static_cast<std::size_t>(t), 0.0f);
    if (counts)
        for (i64 j = 0; j < t; ++j)
            bias[j] = std::log(counts[j]);
    const i64 rowBlocks = (t + kRowBlock - 1) / kRowBlock;
    std::vector<double> ent(static_cast<std::size_t>(nh * t), 0.0),
        cls(static_cast<std::size_t>(nh * t), 0.0);
    for (i64 hd = 0; hd < nh; ++hd) {
        // q, k, v of this head as contiguous [T, dh]; v transposed for A.V = A (v^T)^T
        std::vector<float> q(static_cast<std::size_t>(t * dh)), k(q.size()), vt(q.size());
        for (i64 i = 0; i < t; ++i)
            for (i64 f = 0; f < dh; ++f) {
                q[i * dh + f] = qkv[i * 3 * d + hd * dh + f] * scale;
                k[i * dh + f] = qkv[i * 3 * d + d + hd * dh + f];
                vt[f * t + i] = qkv[i * 3 * d + 2 * d + hd * dh + f];
            }
        const PackedRows kp = packRows(k.data(), t, dh);
        const PackedRows vp = packRows(vt.data(), dh, t);
        std::vector<float> scoresAll(static_cast<std::size_t>(par::maxThreads() * kRowBlock * t));
        std::vector<float> oAll(static_cast<std::size_t>(par::maxThreads() * kRowBlock * dh));
#pragma omp parallel
        {
            float* const s = scoresAll.data() + std::size_t(par::threadId()) * kRowBlock * t;
            float* const o = oAll.data() + std::size_t(par::threadId()) * kRowBlock * dh;
#pragma omp for schedule(static)
            for (i64 b = 0; b < rowBlocks; ++b) {
                const i64 i0 = b * kRowBlock, rows = std::min(kRowBlock, t - i0);
                gemmPacked(q.data() + i0 * dh, rows, kp, s);
                for (i64 r = 0; r < rows; ++r) {
                    float* row = s + r * t;
                    for (i64 j = 0; j < t; ++j)
                        row[j] += bias[j];
                    const double hrow = softmaxRow(row, t, entropy != nullptr);
                    ent[hd * t + i0 + r] = hrow;
                    if (i0 + r == 0 && clsAttn)
                        for (i64 j = 0; j < t; ++j)
                            cls[hd * t + j] = row[j];
                }
                gemmPacked(s, rows, vp, o);
                for (i64 r = 0; r < rows; ++r)
                    for (i64 f = 0; f < dh; ++f)
                        out[(i0 + r) * d + hd * dh + f] = o[r * dh + f];
            }
        }
    }
    if (entropy)
        for (i64 i = 0; i < t; ++i) {
            double sum = 0;
            for (i64 hd = 0; hd < nh; ++hd)
                sum += ent[hd * t + i];
            entropy[i] = sum / nh;
        }
    if (clsAttn)
        for (i64 j = 0; j < t; ++j) {
            double sum = 0;
            for (i64 hd = 0; hd < nh; ++hd)
                sum += cls[hd * t + j];
            clsAttn[j] = sum / nh;
        }
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

    HookState st(c, hp, item, opt.keepSources);
    std::vector<float> h, qkv, att, proj, mlp;
    std::vector<double> entropy, clsAttn;
    for (i64 l = 0; l < c.depth; ++l) {
        const VitBlock& blk = m.blocks[static_cast<std::size_t>(l)];
        const i64 t = st.tokens();
        BlockStat bs;
        bs.tokensIn = t;
        const i64 r = st.mergeCount(l);
        const HookNeeds needs = hookNeeds(hp.method, r);
        entropy.assign(needs.entropy ? static_cast<std::size_t>(t) : 0, 0.0);
        clsAttn.assign(needs.clsAttn ? static_cast<std::size_t>(t) : 0, 0.0);
        h.resize(static_cast<std::size_t>(t * d));
        layerNorm(blk.norm1, x.data(), t, d, h.data());
        attention(blk, c, h.data(), t, st.countsOrNull(), qkv, att,
                  needs.entropy ? entropy.data() : nullptr,
                  needs.clsAttn ? clsAttn.data() : nullptr);
        proj.resize(static_cast<std::size_t>(t * d));
        linear(blk.proj, att.data(), t, proj.data());
        for (std::size_t i = 0; i < proj.size(); ++i)
            x[i] += proj[i];
        if (r > 0) st.apply(l, r, x, qkv, entropy, clsAttn);
        const i64 t2 = st.tokens();
        bs.tokensOut = t2;
        h.resize(static_cast<std::size_t>(t2 * d));
        layerNorm(blk.norm2, x.data(), t2, d, h.data());
        mlp.resize(static_cast<std::size_t>(t2 * c.hidden));
        linear(blk.fc1, h.data(), t2, mlp.data());
        geluInPlace(mlp.data(), t2 * c.hidden);
        proj.resize(static_cast<std::size_t>(t2 * d));
        linear(blk.fc2, mlp.data(), t2, proj.data());
        for (std::size_t i = 0; i < proj.size(); ++i)
            x[i] += proj[i];
        const double td = double(t), dd = double(d);
        bs.flops = 2.0 * td * dd * 3 * dd + 4.0 * td * td * dd + 2.0 * td * dd * dd +
                   4.0 * double(t2) * dd * double(c.hidden);
        res.blocks.push_back(bs);
    }
    h.resize(static_cast<std::size_t>(d));
    layerNorm(m.norm, x.data(), 1, d, h.data());
    res.logits.resize(static_cast<std::size_t>(c.classes));
    linear(m.head, h.data(), 1, res.logits.data());
    res.flops = vitFlops(c, res.blocks);
    if (opt.keepSources) {
        res.owner = st.owner();
        res.counts = st.counts();
    }
    return res;
}

} // namespace qmpp
