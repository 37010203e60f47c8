// VitGpu (vitgpu.h): the ViT forward on a CUDA device. cuBLAS takes every product (the
// linears and attention's two, batched over items and heads); kernels/vit.cu does LayerNorm,
// bias and GELU, the residuals, the head split, softmax with ln c and the merge. The merge
// decision runs on the host with the CPU hook's code: only the keys averaged over heads and
// the entropies or class attention it needs come back, then the plan goes down.
#include "qmpp/vitgpu.h"

#include "qmpp/hook.h"
#include "vitmodel.h"

#include "gpucontext.h"

#include <cmath>
#include <string>

namespace qmpp {

namespace kv = kernels::vit;
using gpu::DevBlock;
using gpu::DeviceBuffer;
using gpu::DevLinear;
using gpu::DevNorm;
using gpu::Tensor;

struct VitGpu::Impl {
    explicit Impl(bool fp16) : ctx(fp16) {}
    gpu::Context ctx;
    std::shared_ptr<const VitModel> model;
    DevLinear patch, head;
    DeviceBuffer<float> cls, pos;
    std::vector<DevBlock> blocks;
    DevNorm norm;

    DeviceBuffer<float> pixels, counts, entropy, clsRow, keys, weight, logitsF;
    DeviceBuffer<int> offsets, members;
    Tensor cols, emb, x, x2, h, att, y, mlp, pooled, logits;

    void attention(const DevBlock& blk, int batch, int t, bool merged, bool wantEntropy,
                   bool wantCls) {
        const VitConfig& c = model->cfg;
        const int d = int(c.dim), nh = int(c.heads), rows = batch * t;
        h.resize(std::size_t(rows) * d);
        kv::layerNorm(ctx.prec, x.get(), d, rows, d, blk.norm1.w.get(), blk.norm1.b.get(),
                      blk.norm1.eps, h.get(), ctx.stream);
        ctx.linear(blk.qkv, h, rows, ctx.qkv);
        kv::biasAct(ctx.prec, ctx.qkv.get(), rows, 3 * d, blk.qkv.b.get(), false, ctx.stream);
        entropy.resize(wantEntropy ? std::size_t(batch) * nh * t : 0);
        clsRow.resize(wantCls ? std::size_t(batch) * nh * t : 0);
        ctx.attention(batch, t, d, nh, merged ? counts.get() : nullptr, nullptr,
                      wantEntropy ? entropy.get() : nullptr, wantCls ? clsRow.get() : nullptr, att);
        ctx.linear(blk.proj, att, rows, y);
        kv::biasResidual(ctx.prec, x.get(), y.get(), rows, d, blk.proj.b.get(), ctx.stream);
    }

    // The hook: bring back what the decision needs, decide per item on the host, merge on the
    // device. Returns the tokens after the merge.
    int merge(std::vector<HookState>& states, i64 block, i64 r, int batch, int t,
              const HookNeeds& needs) {
        const VitConfig& c = model->cfg;
        const int d = int(c.dim), nh = int(c.heads), dh = d / nh;
        keys.resize(std::size_t(batch) * t * dh);
        kv::keysMean(ctx.prec, ctx.k.get(), batch, nh, t, dh, keys.get(), ctx.stream);
        std::vector<float> km(keys.size()), ent(entropy.size()), cr(clsRow.size());
        keys.download(km.data(), km.size(), ctx.stream);
        if (needs.entropy) entropy.download(ent.data(), ent.size(), ctx.stream);
        if (needs.clsAttn) clsRow.download(cr.data(), cr.size(), ctx.stream);
        ctx.sync();

        std::vector<int> offs, mem;
        std::vector<float> w;
        std::vector<float> cnt;
        int tOut = 0;
        std::vector<double> perHead(std::size_t(nh) * t), e, ca;
        for (int b = 0; b < batch; ++b) {
            const std::size_t hb = std::size_t(b) * nh * t;
            if (needs.entropy) {
                perHead.assign(ent.begin() + hb, ent.begin() + hb + perHead.size());
                e.resize(std::size_t(t));
                meanOverHeads(perHead, nh, t, e.data());
            }
            if (needs.clsAttn) {
                perHead.assign(cr.begin() + hb, cr.begin() + hb + perHead.size());
                ca.resize(std::size_t(t));
                meanOverHeads(perHead, nh, t, ca.data());
            }
            const MergePlan p =
                states[b].plan(block, r, km.data() + std::size_t(b) * t * dh, e, ca);
            tOut = int(p.tOut);
            gpu::appendMembers(p, offs, mem, w);
            states[b].commit(p);
            cnt.insert(cnt.end(), states[b].counts().begin(), states[b].counts().end());
        }
        offs.push_back(int(mem.size()));
        offsets.upload(offs.data(), offs.size(), ctx.stream);
        members.upload(mem.data(), mem.size(), ctx.stream);
        weight.upload(w.data(), w.size(), ctx.stream);
        counts.upload(cnt.data(), cnt.size(), ctx.stream);
        x2.resize(std::size_t(batch) * tOut * d);
        kv::mergeRows(ctx.prec, x.get(), batch, t, tOut, d, offsets.get(), members.get(),
                      weight.get(), x2.get(), ctx.stream);
        std::swap(x, x2);
        // the host vectors above must outlive the uploads
        ctx.sync();
        return tOut;
    }
};

bool gpuForwardAvailable(std::string* why) {
    return kernels::deviceCount(why) > 0;
}

VitGpu::VitGpu(std::shared_ptr<const VitModel> model, bool fp16) : m_impl(new Impl(fp16)) {
    Impl& g = *m_impl;
    gpu::Context& ctx = g.ctx;
    g.model = std::move(model);
    for (Tensor* t :
         {&g.cols, &g.emb, &g.x, &g.x2, &g.h, &g.att, &g.y, &g.mlp, &g.pooled, &g.logits})
        t->elem = ctx.elem;
    const VitModel& m = *g.model;
    ctx.upload(g.patch, m.patch);
    ctx.upload(g.head, m.head);
    g.cls.upload(m.cls.data(), m.cls.size(), ctx.stream);
    g.pos.upload(m.pos.data(), m.pos.size(), ctx.stream);
    ctx.upload(g.norm, m.norm);
    g.blocks.resize(m.blocks.size());
    for (std::size_t l = 0; l < m.blocks.size(); ++l) {
        const VitBlock& hb = m.blocks[l];
        ctx.upload(g.blocks[l], hb.norm1, hb.norm2, hb.qkv, hb.proj, hb.fc1, hb.fc2);
    }
    ctx.sync();
}

VitGpu::~VitGpu() = default;

const char* VitGpu::precision() const {
    return m_impl->ctx.precision();
}
std::string VitGpu::device() const {
    return m_impl->ctx.deviceName;
}

std::vector<ForwardResult> VitGpu::forward(const float* pixels, i64 batch64, const HookParams& hp,
                                           i64 item0, const ForwardOptions& opt) {
    Impl& g = *m_impl;
    const VitConfig& c = g.model->cfg;
    const int batch = int(batch64), n = int(c.patches), d = int(c.dim);
    const int cpp = int(c.channels * c.patch * c.patch);
    std::vector<ForwardResult> res(static_cast<std::size_t>(batch));
    if (batch <= 0) return res;

    const std::size_t pixelCount = std::size_t(batch) * c.channels * c.imageSize * c.imageSize;
    g.pixels.upload(pixels, pixelCount, g.ctx.stream);
    g.cols.resize(std::size_t(batch) * n * cpp);
    kv::im2col(g.ctx.prec, g.pixels.get(), batch, int(c.channels), int(c.imageSize), int(c.patch),
               g.cols.get(), g.ctx.stream);
    g.ctx.linear(g.patch, g.cols, batch * n, g.emb);
    g.x.resize(std::size_t(batch) * (n + 1) * d);
    kv::embed(g.ctx.prec, g.emb.get(), g.patch.b.get(), g.cls.get(), g.pos.get(), batch, n, d,
              g.x.get(), g.ctx.stream);

    std::vector<HookState> states;
    states.reserve(static_cast<std::size_t>(batch));
    for (int b = 0; b < batch; ++b)
        states.emplace_back(c, hp, item0 + b, opt.keepSources);
    std::vector<BlockStat> stats;
    bool merged = false;
    for (i64 l = 0; l < c.depth; ++l) {
        const DevBlock& blk = g.blocks[static_cast<std::size_t>(l)];
        const int t = int(states[0].tokens());
        const i64 r = states[0].mergeCount(l);
        const HookNeeds needs = hookNeeds(hp.method, r);
        g.attention(blk, batch, t, merged, needs.entropy, needs.clsAttn);
        int t2 = t;
        if (r > 0) {
            t2 = g.merge(states, l, r, batch, t, needs);
            merged = true;
        }
        const int rows = batch * t2;
        g.h.resize(std::size_t(rows) * d);
        kv::layerNorm(g.ctx.prec, g.x.get(), d, rows, d, blk.norm2.w.get(), blk.norm2.b.get(),
                      blk.norm2.eps, g.h.get(), g.ctx.stream);
        g.ctx.linear(blk.fc1, g.h, rows, g.mlp);
        kv::biasAct(g.ctx.prec, g.mlp.get(), rows, blk.fc1.out, blk.fc1.b.get(), true,
                    g.ctx.stream);
        g.ctx.linear(blk.fc2, g.mlp, rows, g.y);
        kv::biasResidual(g.ctx.prec, g.x.get(), g.y.get(), rows, d, blk.fc2.b.get(), g.ctx.stream);
        BlockStat bs;
        bs.tokensIn = t;
        bs.tokensOut = t2;
        bs.flops = blockFlops(c, t, t2);
        stats.push_back(bs);
    }
    // the class token of each item: final norm, head
    const int t = int(states[0].tokens());
    g.pooled.resize(std::size_t(batch) * d);
    kv::layerNorm(g.ctx.prec, g.x.get(), (long long)t * d, batch, d, g.norm.w.get(), g.norm.b.get(),
                  g.norm.eps, g.pooled.get(), g.ctx.stream);
    g.ctx.linear(g.head, g.pooled, batch, g.logits);
    const int classes = int(c.classes);
    kv::biasAct(g.ctx.prec, g.logits.get(), batch, classes, g.head.b.get(), false, g.ctx.stream);
    g.logitsF.resize(std::size_t(batch) * classes);
    kv::toFloat(g.ctx.prec, g.logits.get(), (long long)batch * classes, g.logitsF.get(),
                g.ctx.stream);
    std::vector<float> all(g.logitsF.size());
    g.logitsF.download(all.data(), all.size(), g.ctx.stream);
    g.ctx.sync();

    const double flops = vitFlops(c, stats);
    for (int b = 0; b < batch; ++b) {
        ForwardResult& fr = res[static_cast<std::size_t>(b)];
        fr.logits.assign(all.begin() + std::size_t(b) * classes,
                         all.begin() + std::size_t(b + 1) * classes);
        fr.blocks = stats;
        fr.flops = flops;
        if (opt.keepSources) {
            fr.owner = states[b].owner();
            fr.counts = states[b].counts();
        }
    }
    return res;
}

} // namespace qmpp
