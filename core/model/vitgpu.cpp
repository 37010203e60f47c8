// VitGpu (vitgpu.h): the ViT forward on a CUDA device. cuBLAS takes every product (the
// linears and attention's two, batched over items and heads); kernels/vit.cu does LayerNorm,
// bias and GELU, the residuals, the head split, softmax with ln c and the merge. The merge
// decision runs on the host with the CPU hook's code: only the keys averaged over heads and
// the entropies or class attention it needs come back, then the plan goes down.
#include "qmpp/vitgpu.h"

#include "hook.h"
#include "vitmodel.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/vit.h"

#include <cublas_v2.h>

#include <cmath>
#include <string>

namespace qmpp {

namespace kv = kernels::vit;
using kernels::CudaError;
using kernels::DeviceBuffer;
using kernels::Prec;

namespace {

void cublasCheck(cublasStatus_t st, const char* expr) {
    if (st != CUBLAS_STATUS_SUCCESS)
        throw CudaError(std::string("cuBLAS: ") + expr + " failed: " + cublasGetStatusString(st));
}
#define QMPP_CUBLAS(expr) cublasCheck((expr), #expr)

// Device storage of `count` elements in the forward's precision.
struct Tensor {
    DeviceBuffer<char> buf;
    std::size_t elem = 4;
    void resize(std::size_t count) { buf.resize(count * elem); }
    void* get() const { return buf.get(); }
};

struct DevLinear {
    int in = 0, out = 0;
    Tensor w;
    DeviceBuffer<float> b;
};
struct DevNorm {
    DeviceBuffer<float> w, b;
};
struct DevBlock {
    DevNorm norm1, norm2;
    DevLinear qkv, proj, fc1, fc2;
};

} // namespace

struct VitGpu::Impl {
    std::shared_ptr<const VitModel> model;
    Prec prec = Prec::F32;
    std::size_t elem = 4;
    cudaDataType_t dtype = CUDA_R_32F;
    cublasHandle_t blas = nullptr;
    cudaStream_t stream = nullptr;
    std::string deviceName;

    DevLinear patch, head;
    DeviceBuffer<float> cls, pos;
    std::vector<DevBlock> blocks;
    DevNorm norm;

    DeviceBuffer<float> pixels, scores, counts, entropy, clsRow, keys, weight, logitsF;
    DeviceBuffer<int> offsets, members;
    Tensor cols, emb, x, x2, h, qkv, q, k, v, probs, o, att, y, mlp, pooled, logits;

    Tensor tensor() const {
        Tensor t;
        t.elem = elem;
        return t;
    }
    void upload(Tensor& dst, const std::vector<float>& host) {
        DeviceBuffer<float> tmp;
        tmp.upload(host.data(), host.size(), stream);
        dst.resize(host.size());
        kv::toPrec(prec, tmp.get(), static_cast<long long>(host.size()), dst.get(), stream);
        QMPP_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    void upload(DevLinear& dst, const Linear& src) {
        dst.in = static_cast<int>(src.in);
        dst.out = static_cast<int>(src.out);
        dst.w = tensor();
        upload(dst.w, unpackRows(src.w));
        dst.b.upload(src.b.data(), src.b.size(), stream);
    }
    void upload(DevNorm& dst, const Norm& src) {
        dst.w.upload(src.w.data(), src.w.size(), stream);
        dst.b.upload(src.b.data(), src.b.size(), stream);
    }

    // Column-major cuBLAS on row-major data: C^T = op(A)^T... spelled out at each call.
    void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int kk, float alpha,
              const void* a, cudaDataType_t at, int lda, long long sa, const void* b,
              cudaDataType_t bt, int ldb, long long sb, void* c, cudaDataType_t ct, int ldc,
              long long sc, int batch) {
        const float beta = 0.0f;
        QMPP_CUBLAS(cublasGemmStridedBatchedEx(blas, ta, tb, m, n, kk, &alpha, a, at, lda, sa, b,
                                               bt, ldb, sb, &beta, c, ct, ldc, sc, batch,
                                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    // y [rows, out] = x [rows, in] W^T (the bias comes in the following kernel)
    void linear(const DevLinear& l, const Tensor& in, int rows, Tensor& out) {
        out.resize(static_cast<std::size_t>(rows) * l.out);
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, l.out, rows, l.in, 1.0f, l.w.get(), dtype, l.in, 0, in.get(),
             dtype, l.in, 0, out.get(), dtype, l.out, 0, 1);
    }

    void attention(const DevBlock& blk, int batch, int t, bool merged, bool wantEntropy,
                   bool wantCls) {
        const VitConfig& c = model->cfg;
        const int d = int(c.dim), nh = int(c.heads), dh = d / nh, rows = batch * t;
        const std::size_t headElems = std::size_t(batch) * nh * t * dh;
        const std::size_t scoreElems = std::size_t(batch) * nh * t * t;
        h.resize(std::size_t(rows) * d);
        kv::layerNorm(prec, x.get(), d, rows, d, blk.norm1.w.get(), blk.norm1.b.get(), 1e-6f,
                      h.get(), stream);
        linear(blk.qkv, h, rows, qkv);
        kv::biasAct(prec, qkv.get(), rows, 3 * d, blk.qkv.b.get(), false, stream);
        q.resize(headElems);
        k.resize(headElems);
        v.resize(headElems);
        kv::splitHeads(prec, qkv.get(), batch, t, nh, dh, q.get(), k.get(), v.get(), stream);
        // scores [B*H, t, t] = scale q k^T: row-major S = Q K^T is column-major S^T = K Q^T
        scores.resize(scoreElems);
        const long long sHead = (long long)t * dh, sScore = (long long)t * t;
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, t, t, dh, 1.0f / std::sqrt(float(dh)), k.get(), dtype, dh,
             sHead, q.get(), dtype, dh, sHead, scores.get(), CUDA_R_32F, t, sScore, batch * nh);
        probs.resize(scoreElems);
        entropy.resize(wantEntropy ? std::size_t(batch) * nh * t : 0);
        clsRow.resize(wantCls ? std::size_t(batch) * nh * t : 0);
        kv::softmaxRows(prec, scores.get(), batch, nh, t, merged ? counts.get() : nullptr,
                        probs.get(), wantEntropy ? entropy.get() : nullptr,
                        wantCls ? clsRow.get() : nullptr, stream);
        // o [B*H, t, dh] = P V: column-major O^T = V^T P^T
        o.resize(headElems);
        gemm(CUBLAS_OP_N, CUBLAS_OP_N, dh, t, t, 1.0f, v.get(), dtype, dh, sHead, probs.get(),
             dtype, t, sScore, o.get(), dtype, dh, sHead, batch * nh);
        att.resize(std::size_t(rows) * d);
        kv::mergeHeads(prec, o.get(), batch, t, nh, dh, att.get(), stream);
        linear(blk.proj, att, rows, y);
        kv::biasResidual(prec, x.get(), y.get(), rows, d, blk.proj.b.get(), stream);
    }

    // The hook: bring back what the decision needs, decide per item on the host, merge on the
    // device. Returns the tokens after the merge.
    int merge(std::vector<HookState>& states, i64 block, i64 r, int batch, int t,
              const HookNeeds& needs) {
        const VitConfig& c = model->cfg;
        const int d = int(c.dim), nh = int(c.heads), dh = d / nh;
        keys.resize(std::size_t(batch) * t * dh);
        kv::keysMean(prec, k.get(), batch, nh, t, dh, keys.get(), stream);
        std::vector<float> km(keys.size()), ent(entropy.size()), cr(clsRow.size());
        keys.download(km.data(), km.size(), stream);
        if (needs.entropy) entropy.download(ent.data(), ent.size(), stream);
        if (needs.clsAttn) clsRow.download(cr.data(), cr.size(), stream);
        QMPP_CUDA_CHECK(cudaStreamSynchronize(stream));

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
            // members grouped by output row, in token order
            std::vector<int> start(std::size_t(tOut) + 1, 0);
            for (i64 i = 0; i < p.tIn; ++i)
                if (p.newRow[i] >= 0) ++start[p.newRow[i] + 1];
            for (int g = 0; g < tOut; ++g)
                start[g + 1] += start[g];
            const int base = int(mem.size());
            for (int g = 0; g < tOut; ++g)
                offs.push_back(base + start[g]);
            mem.resize(mem.size() + start[tOut]);
            w.resize(mem.size());
            std::vector<int> fill(start.begin(), start.end() - 1);
            for (i64 i = 0; i < p.tIn; ++i)
                if (p.newRow[i] >= 0) {
                    const int at = base + fill[p.newRow[i]]++;
                    mem[at] = int(i);
                    w[at] = p.weight[i];
                }
            states[b].commit(p);
            cnt.insert(cnt.end(), states[b].counts().begin(), states[b].counts().end());
        }
        offs.push_back(int(mem.size()));
        offsets.upload(offs.data(), offs.size(), stream);
        members.upload(mem.data(), mem.size(), stream);
        weight.upload(w.data(), w.size(), stream);
        counts.upload(cnt.data(), cnt.size(), stream);
        x2.resize(std::size_t(batch) * tOut * d);
        kv::mergeRows(prec, x.get(), batch, t, tOut, d, offsets.get(), members.get(), weight.get(),
                      x2.get(), stream);
        std::swap(x, x2);
        // the host vectors above must outlive the uploads
        QMPP_CUDA_CHECK(cudaStreamSynchronize(stream));
        return tOut;
    }
};

bool gpuForwardAvailable(std::string* why) {
    return kernels::deviceCount(why) > 0;
}

VitGpu::VitGpu(std::shared_ptr<const VitModel> model, bool fp16) : m_impl(new Impl) {
    std::string why;
    if (!gpuForwardAvailable(&why))
        throw std::runtime_error("GPU forward: no CUDA device (" + why + ")");
    Impl& g = *m_impl;
    g.model = std::move(model);
    g.prec = fp16 ? Prec::F16 : Prec::F32;
    g.elem = fp16 ? 2 : 4;
    g.dtype = fp16 ? CUDA_R_16F : CUDA_R_32F;
    g.deviceName = kernels::currentDeviceInfo().name;
    QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
    QMPP_CUBLAS(cublasCreate(&g.blas));
    QMPP_CUBLAS(cublasSetStream(g.blas, g.stream));
    // FP32 means FP32: no TF32 in the products (SPEC: GPU FP32 equals the CPU within 1e-4)
    QMPP_CUBLAS(cublasSetMathMode(g.blas, CUBLAS_DEFAULT_MATH));
    for (Tensor* t : {&g.cols, &g.emb, &g.x, &g.x2, &g.h, &g.qkv, &g.q, &g.k, &g.v, &g.probs, &g.o,
                      &g.att, &g.y, &g.mlp, &g.pooled, &g.logits})
        t->elem = g.elem;
    const VitModel& m = *g.model;
    g.upload(g.patch, m.patch);
    g.upload(g.head, m.head);
    g.cls.upload(m.cls.data(), m.cls.size(), g.stream);
    g.pos.upload(m.pos.data(), m.pos.size(), g.stream);
    g.upload(g.norm, m.norm);
    g.blocks.resize(m.blocks.size());
    for (std::size_t l = 0; l < m.blocks.size(); ++l) {
        DevBlock& db = g.blocks[l];
        const VitBlock& hb = m.blocks[l];
        g.upload(db.norm1, hb.norm1);
        g.upload(db.norm2, hb.norm2);
        g.upload(db.qkv, hb.qkv);
        g.upload(db.proj, hb.proj);
        g.upload(db.fc1, hb.fc1);
        g.upload(db.fc2, hb.fc2);
    }
    QMPP_CUDA_CHECK(cudaStreamSynchronize(g.stream));
}

VitGpu::~VitGpu() {
    if (!m_impl) return;
    if (m_impl->blas) cublasDestroy(m_impl->blas);
    if (m_impl->stream) QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(m_impl->stream));
}

const char* VitGpu::precision() const {
    return m_impl->prec == Prec::F16 ? "fp16" : "fp32";
}
std::string VitGpu::device() const {
    return m_impl->deviceName;
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
    g.pixels.upload(pixels, pixelCount, g.stream);
    g.cols.resize(std::size_t(batch) * n * cpp);
    kv::im2col(g.prec, g.pixels.get(), batch, int(c.channels), int(c.imageSize), int(c.patch),
               g.cols.get(), g.stream);
    g.linear(g.patch, g.cols, batch * n, g.emb);
    g.x.resize(std::size_t(batch) * (n + 1) * d);
    kv::embed(g.prec, g.emb.get(), g.patch.b.get(), g.cls.get(), g.pos.get(), batch, n, d,
              g.x.get(), g.stream);

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
        kv::layerNorm(g.prec, g.x.get(), d, rows, d, blk.norm2.w.get(), blk.norm2.b.get(), 1e-6f,
                      g.h.get(), g.stream);
        g.linear(blk.fc1, g.h, rows, g.mlp);
        kv::biasAct(g.prec, g.mlp.get(), rows, blk.fc1.out, blk.fc1.b.get(), true, g.stream);
        g.linear(blk.fc2, g.mlp, rows, g.y);
        kv::biasResidual(g.prec, g.x.get(), g.y.get(), rows, d, blk.fc2.b.get(), g.stream);
        BlockStat bs;
        bs.tokensIn = t;
        bs.tokensOut = t2;
        bs.flops = blockFlops(c, t, t2);
        stats.push_back(bs);
    }
    // the class token of each item: final norm, head
    const int t = int(states[0].tokens());
    g.pooled.resize(std::size_t(batch) * d);
    kv::layerNorm(g.prec, g.x.get(), (long long)t * d, batch, d, g.norm.w.get(), g.norm.b.get(),
                  1e-6f, g.pooled.get(), g.stream);
    g.linear(g.head, g.pooled, batch, g.logits);
    const int classes = int(c.classes);
    kv::biasAct(g.prec, g.logits.get(), batch, classes, g.head.b.get(), false, g.stream);
    g.logitsF.resize(std::size_t(batch) * classes);
    kv::toFloat(g.prec, g.logits.get(), (long long)batch * classes, g.logitsF.get(), g.stream);
    std::vector<float> all(g.logitsF.size());
    g.logitsF.download(all.data(), all.size(), g.stream);
    QMPP_CUDA_CHECK(cudaStreamSynchronize(g.stream));

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
