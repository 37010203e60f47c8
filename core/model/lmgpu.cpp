// LmGpu (vitgpu.h): the causal language model on a CUDA device. The products through cuBLAS
// (gpu::Context), attention with the causal rule by position and ln c, and the prefix merge
// decided on the host by the CPU's own code (lmmodel.h), applied by kernels::vit::mergeRows.
#include "gpucontext.h"
#include "lmmodel.h"

#include "qmpp/vitgpu.h"

#include <algorithm>
#include <cmath>
#include <ostream>

namespace qmpp {

namespace kv = kernels::vit;
using gpu::DeviceBuffer;
using gpu::DevLinear;
using gpu::DevNorm;
using gpu::Tensor;

struct LmGpu::Impl {
    explicit Impl(bool fp16) : ctx(fp16) {}
    gpu::Context ctx;
    std::shared_ptr<const LmModel> model;
    DevLinear out; // the tied embedding: tok [V, D], zero bias
    DeviceBuffer<float> pos;
    std::vector<gpu::DevBlock> blocks;
    DevNorm ln;
    DeviceBuffer<int> ids, positions, offsets, members;
    DeviceBuffer<float> counts, entropy, keys, weight, logitsF;
    Tensor x, x2, h, att, y, mlp, logits;
};

LmGpu::LmGpu(std::shared_ptr<const LmModel> model, bool fp16) : m_impl(new Impl(fp16)) {
    Impl& g = *m_impl;
    gpu::Context& ctx = g.ctx;
    g.model = std::move(model);
    for (Tensor* t : {&g.x, &g.x2, &g.h, &g.att, &g.y, &g.mlp, &g.logits})
        t->elem = ctx.elem;
    const LmModel& m = *g.model;
    ctx.upload(g.out, m.out);
    g.pos.upload(m.pos.data(), m.pos.size(), ctx.stream);
    ctx.upload(g.ln, m.ln);
    g.blocks.resize(m.blocks.size());
    for (std::size_t l = 0; l < m.blocks.size(); ++l) {
        const LmBlock& hb = m.blocks[l];
        ctx.upload(g.blocks[l], hb.ln1, hb.ln2, hb.qkv, hb.proj, hb.fc1, hb.fc2);
    }
    ctx.sync();
}

LmGpu::~LmGpu() = default;

const char* LmGpu::precision() const {
    return m_impl->ctx.precision();
}
std::string LmGpu::device() const {
    return m_impl->ctx.deviceName;
}

LmResult LmGpu::forward(const std::vector<i64>& ids64, const PrefixMerge& pm, i64 item) {
    Impl& g = *m_impl;
    gpu::Context& ctx = g.ctx;
    const LmModel& m = *g.model;
    const LmConfig& c = m.cfg;
    checkLmInput(m, ids64, pm);
    const int n = int(ids64.size()), d = int(c.dim), nh = int(c.heads), dh = d / nh;
    const bool merging = pm.method != ModelMethod::None;
    LmResult res;
    std::vector<int> ids(ids64.begin(), ids64.end());
    g.ids.upload(ids.data(), ids.size(), ctx.stream);
    g.x.resize(std::size_t(n) * d);
    kv::embedTokens(ctx.prec, g.ids.get(), n, g.out.w.get(), g.pos.get(), d, g.x.get(), ctx.stream);
    std::vector<i64> pos(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        pos[i] = i;
    std::vector<int> pos32(ids.size());
    const auto uploadPositions = [&] {
        pos32.assign(pos.begin(), pos.end());
        g.positions.upload(pos32.data(), pos32.size(), ctx.stream);
    };
    uploadPositions();
    std::vector<float> counts;
    bool merged = false;
    int t = n;
    for (i64 l = 0; l < c.depth; ++l) {
        const gpu::DevBlock& blk = g.blocks[static_cast<std::size_t>(l)];
        const bool here = merging && l == pm.block;
        const double td = double(t);
        res.flops += 2.0 * td * d * 3 * d + 2.0 * td * td * d + 2.0 * td * d * d;
        g.h.resize(std::size_t(t) * d);
        kv::layerNorm(ctx.prec, g.x.get(), d, t, d, blk.norm1.w.get(), blk.norm1.b.get(),
                      blk.norm1.eps, g.h.get(), ctx.stream);
        ctx.linear(blk.qkv, g.h, t, ctx.qkv);
        kv::biasAct(ctx.prec, ctx.qkv.get(), t, 3 * d, blk.qkv.b.get(), false, ctx.stream);
        const bool wantEntropy = here && pm.method == ModelMethod::QuickMerge;
        g.entropy.resize(wantEntropy ? std::size_t(nh) * t : 0);
        ctx.attention(1, t, d, nh, merged ? g.counts.get() : nullptr, g.positions.get(),
                      wantEntropy ? g.entropy.get() : nullptr, nullptr, g.att);
        ctx.linear(blk.proj, g.att, t, g.y);
        kv::biasResidual(ctx.prec, g.x.get(), g.y.get(), t, d, blk.proj.b.get(), ctx.stream);
        if (here) {
            g.keys.resize(std::size_t(t) * dh);
            kv::keysMean(ctx.prec, ctx.k.get(), 1, nh, t, dh, g.keys.get(), ctx.stream);
            std::vector<float> km(g.keys.size()), perHeadF(g.entropy.size());
            g.keys.download(km.data(), km.size(), ctx.stream);
            if (wantEntropy) g.entropy.download(perHeadF.data(), perHeadF.size(), ctx.stream);
            ctx.sync();
            std::vector<double> ent;
            if (wantEntropy) {
                ent.resize(std::size_t(t));
                meanOverHeads(std::vector<double>(perHeadF.begin(), perHeadF.end()), nh, t,
                              ent.data());
            }
            const MergePlan plan = prefixPlan(c, pm, item, t, ent, km.data());
            std::vector<int> offs, mem;
            std::vector<float> w;
            gpu::appendMembers(plan, offs, mem, w);
            offs.push_back(int(mem.size()));
            if (counts.empty()) counts.assign(static_cast<std::size_t>(t), 1.0f);
            movePositions(plan, pos, counts);
            g.offsets.upload(offs.data(), offs.size(), ctx.stream);
            g.members.upload(mem.data(), mem.size(), ctx.stream);
            g.weight.upload(w.data(), w.size(), ctx.stream);
            g.counts.upload(counts.data(), counts.size(), ctx.stream);
            uploadPositions();
            g.x2.resize(std::size_t(plan.tOut) * d);
            kv::mergeRows(ctx.prec, g.x.get(), 1, t, int(plan.tOut), d, g.offsets.get(),
                          g.members.get(), g.weight.get(), g.x2.get(), ctx.stream);
            std::swap(g.x, g.x2);
            ctx.sync(); // the host vectors above go now
            res.groupOf.assign(plan.newRow.begin(), plan.newRow.begin() + pm.prefix);
            t = int(plan.tOut);
            merged = true;
        }
        res.flops += 4.0 * double(t) * d * double(c.hidden);
        g.h.resize(std::size_t(t) * d);
        kv::layerNorm(ctx.prec, g.x.get(), d, t, d, blk.norm2.w.get(), blk.norm2.b.get(),
                      blk.norm2.eps, g.h.get(), ctx.stream);
        ctx.linear(blk.fc1, g.h, t, g.mlp);
        kv::biasAct(ctx.prec, g.mlp.get(), t, int(c.hidden), blk.fc1.b.get(), true, ctx.stream);
        ctx.linear(blk.fc2, g.mlp, t, g.y);
        kv::biasResidual(ctx.prec, g.x.get(), g.y.get(), t, d, blk.fc2.b.get(), ctx.stream);
    }
    const int first = merging ? int(pm.groups) : 0, rows = t - first;
    g.h.resize(std::size_t(rows) * d);
    kv::layerNorm(ctx.prec, static_cast<const char*>(g.x.get()) + std::size_t(first) * d * ctx.elem,
                  d, rows, d, g.ln.w.get(), g.ln.b.get(), g.ln.eps, g.h.get(), ctx.stream);
    ctx.linear(g.out, g.h, rows, g.logits);
    g.logitsF.resize(std::size_t(rows) * c.vocab);
    kv::toFloat(ctx.prec, g.logits.get(), (long long)rows * c.vocab, g.logitsF.get(), ctx.stream);
    res.logits.resize(g.logitsF.size());
    g.logitsF.download(res.logits.data(), res.logits.size(), ctx.stream);
    ctx.sync();
    res.flops += 2.0 * double(rows) * d * double(c.vocab);
    res.positions.assign(pos.begin() + first, pos.end());
    res.nll = nextWordLosses(res.logits.data(), res.positions, ids64, c.vocab);
    return res;
}

std::vector<GpuModelCheck> checkLmGpu(const std::shared_ptr<const LmModel>& model,
                                      const std::vector<i64>& ids, std::ostream& log) {
    std::vector<GpuModelCheck> rows;
    const i64 n = i64(ids.size()), t = std::max<i64>(1, n / 2), k = std::max<i64>(1, t / 4);
    for (bool fp16 : {false, true}) {
        LmGpu gpu(model, fp16);
        for (ModelMethod m : {ModelMethod::None, ModelMethod::QuickMerge, ModelMethod::Random}) {
            PrefixMerge pm;
            pm.method = m;
            pm.block = std::min<i64>(1, config(*model).depth - 1);
            pm.prefix = t;
            pm.groups = k;
            const LmResult want = lmForward(*model, ids, pm);
            const LmResult got = gpu.forward(ids, pm);
            double err = 0, scale = 0, ceWant = 0, ceGot = 0;
            for (std::size_t i = 0; i < want.logits.size(); ++i) {
                err = std::max(err, double(std::fabs(got.logits[i] - want.logits[i])));
                scale = std::max(scale, double(std::fabs(want.logits[i])));
            }
            for (std::size_t i = 0; i < want.nll.size(); ++i) {
                ceWant += want.nll[i];
                ceGot += got.nll[i];
            }
            ceWant /= double(std::max<std::size_t>(1, want.nll.size()));
            ceGot /= double(std::max<std::size_t>(1, want.nll.size()));
            GpuModelCheck c;
            c.what =
                std::string("language model ") + toString(m) +
                (m == ModelMethod::None ? ""
                                        : " T=" + std::to_string(t) + " K=" + std::to_string(k)) +
                (fp16 ? " fp16" : " fp32");
            c.note = std::string("groups ") + (got.groupOf == want.groupOf ? "equal" : "differ") +
                     ", cross-entropy GPU " + std::to_string(ceGot) + " CPU " +
                     std::to_string(ceWant);
            if (fp16) { // half storage: the losses must agree
                c.err = std::fabs(ceGot - ceWant) / std::max(1.0, ceWant);
                c.tol = 1e-2;
            } else {
                c.err = scale > 0 ? err / scale : err;
                c.tol = 1e-4;
            }
            c.pass = c.err <= c.tol;
            log << "  " << (c.pass ? "PASS" : "FAIL") << "  " << c.what << ": error " << c.err
                << " (tolerance " << c.tol << "); " << c.note << "\n"
                << std::flush;
            rows.push_back(std::move(c));
        }
    }
    return rows;
}

} // namespace qmpp
