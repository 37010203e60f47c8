// checkVitGpu (vitgpu.h): the GPU forward's kernels against float64 references, then the whole
// forward against the CPU's, every method, both precisions.
#include "qmpp/vitgpu.h"

#include "qmpp/hook.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/vit.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>

namespace qmpp {

namespace kv = kernels::vit;
using kernels::DeviceBuffer;
using kernels::Prec;

namespace {

// Values on the device in precision p, and the same values as the device holds them (rounded
// to half in FP16), for the reference.
struct DevArray {
    DeviceBuffer<char> buf;
    std::vector<double> seen;
    Prec p;
    DevArray(Prec prec, const std::vector<float>& host) : p(prec) {
        DeviceBuffer<float> f;
        f.upload(host.data(), host.size());
        buf.resize(host.size() * (p == Prec::F16 ? 2 : 4));
        kv::toPrec(p, f.get(), (long long)host.size(), buf.get(), nullptr);
        seen = read();
    }
    DevArray(Prec prec, std::size_t n) : p(prec) { buf.resize(n * (prec == Prec::F16 ? 2 : 4)); }
    std::vector<double> read() const {
        const std::size_t n = buf.size() / (p == Prec::F16 ? 2 : 4);
        DeviceBuffer<float> f(n);
        kv::toFloat(p, buf.get(), (long long)n, f.get(), nullptr);
        std::vector<float> h(n);
        f.download(h.data(), n);
        QMPP_CUDA_CHECK(cudaDeviceSynchronize());
        return std::vector<double>(h.begin(), h.end());
    }
    void* get() const { return buf.get(); }
};

std::vector<float> randomVec(std::mt19937& g, std::size_t n, float scale, float shift = 0) {
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (float& x : v)
        x = shift + scale * nd(g);
    return v;
}

// max |a - b| / max |b|
double relErr(const std::vector<double>& a, const std::vector<double>& b) {
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        err = std::max(err, std::fabs(a[i] - b[i]));
        scale = std::max(scale, std::fabs(b[i]));
    }
    return scale > 0 ? err / scale : err;
}

struct Checker {
    std::vector<GpuModelCheck> rows;
    std::ostream& log;
    void add(std::string what, double err, double tol, std::string note = {}) {
        GpuModelCheck c{std::move(what), err, tol, err <= tol, std::move(note)};
        log << "  " << (c.pass ? "PASS" : "FAIL") << "  " << c.what << ": error " << c.err
            << " (tolerance " << c.tol << ")" << (c.note.empty() ? "" : "; " + c.note) << "\n"
            << std::flush;
        rows.push_back(std::move(c));
    }
};

double gelu(double v) {
    return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}

void checkKernels(Checker& ck, Prec p) {
    const std::string tag = p == Prec::F16 ? " fp16" : " fp32";
    const double tol = p == Prec::F16 ? 2e-3 : 2e-6; // output rounding: 2^-11, 2^-24
    std::mt19937 g(7);
    { // LayerNorm over a strided view (the final norm reads class rows only)
        const int rows = 37, d = 192, stride = 3 * d;
        DevArray in(p, randomVec(g, std::size_t(rows) * stride, 3.0f, 1.0f));
        const std::vector<float> w = randomVec(g, d, 1.0f), b = randomVec(g, d, 1.0f);
        DeviceBuffer<float> dw, db;
        dw.upload(w.data(), w.size());
        db.upload(b.data(), b.size());
        DevArray out(p, std::size_t(rows) * d);
        kv::layerNorm(p, in.get(), stride, rows, d, dw.get(), db.get(), 1e-6f, out.get(), nullptr);
        std::vector<double> ref(std::size_t(rows) * d);
        for (int r = 0; r < rows; ++r) {
            const double* x = &in.seen[std::size_t(r) * stride];
            double mean = 0, var = 0;
            for (int f = 0; f < d; ++f)
                mean += x[f];
            mean /= d;
            for (int f = 0; f < d; ++f)
                var += (x[f] - mean) * (x[f] - mean);
            var /= d;
            for (int f = 0; f < d; ++f)
                ref[std::size_t(r) * d + f] = (x[f] - mean) / std::sqrt(var + 1e-6) * w[f] + b[f];
        }
        ck.add("layerNorm" + tag, relErr(out.read(), ref), tol * 4);
    }
    { // bias + GELU, and bias + residual
        const int rows = 33, n = 300;
        const std::vector<float> bias = randomVec(g, n, 1.0f);
        DeviceBuffer<float> db;
        db.upload(bias.data(), bias.size());
        DevArray y(p, randomVec(g, std::size_t(rows) * n, 2.0f));
        const std::vector<double> y0 = y.seen;
        kv::biasAct(p, y.get(), rows, n, db.get(), true, nullptr);
        std::vector<double> ref(y0.size());
        for (std::size_t e = 0; e < ref.size(); ++e)
            ref[e] = gelu(y0[e] + bias[e % n]);
        ck.add("bias + GELU" + tag, relErr(y.read(), ref), tol * 2);
        DevArray x(p, randomVec(g, std::size_t(rows) * n, 2.0f));
        const std::vector<double> x0 = x.seen;
        kv::biasResidual(p, x.get(), y.get(), rows, n, db.get(), nullptr);
        const std::vector<double> y1 = y.read();
        for (std::size_t e = 0; e < ref.size(); ++e)
            ref[e] = x0[e] + y1[e] + bias[e % n];
        ck.add("bias + residual" + tag, relErr(x.read(), ref), tol * 2);
    }
    { // heads split and merged back: a permutation, exact
        const int b = 2, t = 11, h = 3, dh = 8, d = h * dh;
        DevArray qkv(p, randomVec(g, std::size_t(b) * t * 3 * d, 1.0f));
        const std::size_t each = std::size_t(b) * h * t * dh;
        DevArray q(p, each), k(p, each), v(p, each), back(p, std::size_t(b) * t * d);
        kv::splitHeads(p, qkv.get(), b, t, h, dh, q.get(), k.get(), v.get(), nullptr);
        kv::mergeHeads(p, k.get(), b, t, h, dh, back.get(), nullptr);
        const std::vector<double> kb = back.read();
        std::vector<double> ref(kb.size());
        for (int bi = 0; bi < b; ++bi)
            for (int i = 0; i < t; ++i)
                for (int f = 0; f < d; ++f)
                    ref[(std::size_t(bi) * t + i) * d + f] =
                        qkv.seen[(std::size_t(bi) * t + i) * 3 * d + d + f];
        ck.add("split/merge heads" + tag, relErr(kb, ref), 0.0);
        // keys averaged over heads
        DeviceBuffer<float> km(std::size_t(b) * t * dh);
        kv::keysMean(p, k.get(), b, h, t, dh, km.get(), nullptr);
        std::vector<float> kmh(km.size());
        km.download(kmh.data(), kmh.size());
        QMPP_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<double> kmr(kmh.size()), kmd(kmh.begin(), kmh.end());
        for (int bi = 0; bi < b; ++bi)
            for (int i = 0; i < t; ++i)
                for (int f = 0; f < dh; ++f) {
                    double s = 0;
                    for (int hd = 0; hd < h; ++hd)
                        s += ref[(std::size_t(bi) * t + i) * d + hd * dh + f];
                    kmr[(std::size_t(bi) * t + i) * dh + f] = s / h;
                }
        ck.add("keys mean" + tag, relErr(kmd, kmr), 1e-6);
    }
    for (bool causal : {false, true}) { // softmax with ln c (and positions), entropy, class row
        const int b = 2, h = 3, t = 150;
        const std::vector<float> sc = randomVec(g, std::size_t(b) * h * t * t, 2.0f);
        std::vector<float> cnt(std::size_t(b) * t);
        std::uniform_real_distribution<float> ud(1.0f, 5.0f);
        for (float& c : cnt)
            c = std::round(ud(g));
        std::vector<int> pos(std::size_t(b) * t); // scrambled, with ties: a merged sequence's
        for (int i = 0; i < b * t; ++i)
            pos[i] = ((i % t) * 7) % (t / 2);
        DeviceBuffer<float> dsc, dcnt, ent(std::size_t(b) * h * t), cls(std::size_t(b) * h * t);
        DeviceBuffer<int> dpos;
        dsc.upload(sc.data(), sc.size());
        dcnt.upload(cnt.data(), cnt.size());
        dpos.upload(pos.data(), pos.size());
        DevArray probs(p, sc.size());
        kv::softmaxRows(p, dsc.get(), b, h, t, dcnt.get(), causal ? dpos.get() : nullptr,
                        probs.get(), ent.get(), cls.get(), nullptr);
        std::vector<float> eh(ent.size()), ch(cls.size());
        ent.download(eh.data(), eh.size());
        cls.download(ch.data(), ch.size());
        QMPP_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<double> pref(sc.size()), eref(eh.size()), cref(ch.size());
        for (int row = 0; row < b * h * t; ++row) {
            const int bi = row / (h * t), i = row % t;
            double mx = -INFINITY, z = 0;
            std::vector<double> l(static_cast<std::size_t>(t));
            for (int j = 0; j < t; ++j) {
                const bool seen = !causal || pos[bi * t + j] <= pos[bi * t + i];
                l[j] =
                    seen ? double(sc[std::size_t(row) * t + j]) + std::log(double(cnt[bi * t + j]))
                         : -INFINITY;
                mx = std::max(mx, l[j]);
            }
            for (int j = 0; j < t; ++j)
                z += std::exp(l[j] - mx);
            double e = 0;
            for (int j = 0; j < t; ++j) {
                const double pj = std::exp(l[j] - mx) / z;
                pref[std::size_t(row) * t + j] = pj;
                e -= pj > 0 ? pj * std::log(pj) : 0.0;
                if (i == 0) cref[std::size_t(row / t) * t + j] = pj;
            }
            eref[row] = e;
        }
        const std::string kind = causal ? " (positions)" : "";
        ck.add("softmax + ln c" + kind + tag, relErr(probs.read(), pref), tol * 2);
        ck.add("row entropy" + kind + tag, relErr(std::vector<double>(eh.begin(), eh.end()), eref),
               1e-5);
        ck.add("class row" + kind + tag, relErr(std::vector<double>(ch.begin(), ch.end()), cref),
               1e-5);
    }
    { // the merge: groups in order, a pruned row, a group whose weights sum to 0
        const int b = 2, tIn = 40, tOut = 15, d = 70;
        DevArray x(p, randomVec(g, std::size_t(b) * tIn * d, 1.0f));
        std::vector<int> offs, mem;
        std::vector<float> w;
        std::uniform_real_distribution<float> ud(0.1f, 3.0f);
        for (int bi = 0; bi < b; ++bi)
            for (int gi = 0; gi < tOut; ++gi) {
                offs.push_back(int(mem.size()));
                for (int i = gi; i < tIn - 1; i += tOut) { // row tIn - 1 is pruned
                    mem.push_back(i);
                    w.push_back(gi == 3 ? 0.0f : ud(g));
                }
            }
        offs.push_back(int(mem.size()));
        DeviceBuffer<int> doffs, dmem;
        DeviceBuffer<float> dw;
        doffs.upload(offs.data(), offs.size());
        dmem.upload(mem.data(), mem.size());
        dw.upload(w.data(), w.size());
        DevArray out(p, std::size_t(b) * tOut * d);
        kv::mergeRows(p, x.get(), b, tIn, tOut, d, doffs.get(), dmem.get(), dw.get(), out.get(),
                      nullptr);
        std::vector<double> ref(std::size_t(b) * tOut * d, 0.0);
        for (int bi = 0; bi < b; ++bi)
            for (int gi = 0; gi < tOut; ++gi) {
                const int go = bi * tOut + gi;
                double ws = 0;
                for (int m = offs[go]; m < offs[go + 1]; ++m)
                    ws += w[m];
                const int cnt = offs[go + 1] - offs[go];
                for (int f = 0; f < d; ++f) {
                    double a = 0;
                    for (int m = offs[go]; m < offs[go + 1]; ++m)
                        a += (ws > 0 ? w[m] : 1.0) *
                             x.seen[(std::size_t(bi) * tIn + mem[m]) * d + f];
                    ref[std::size_t(go) * d + f] = a / (ws > 0 ? ws : std::max(cnt, 1));
                }
            }
        ck.add("merge rows" + tag, relErr(out.read(), ref), tol * 2);
    }
    { // patches and the embedding's assembly
        const int b = 2, c = 3, s = 8, pp = 4, grid = s / pp, n = grid * grid, cpp = c * pp * pp;
        const int d = 5;
        const std::vector<float> px = randomVec(g, std::size_t(b) * c * s * s, 1.0f);
        DeviceBuffer<float> dpx;
        dpx.upload(px.data(), px.size());
        DevArray cols(p, std::size_t(b) * n * cpp);
        kv::im2col(p, dpx.get(), b, c, s, pp, cols.get(), nullptr);
        std::vector<double> ref(cols.buf.size() / (p == Prec::F16 ? 2 : 4));
        for (int bi = 0; bi < b; ++bi)
            for (int i = 0; i < n; ++i)
                for (int ch = 0; ch < c; ++ch)
                    for (int y = 0; y < pp; ++y)
                        for (int xx = 0; xx < pp; ++xx)
                            ref[(std::size_t(bi) * n + i) * cpp + (ch * pp + y) * pp + xx] =
                                px[((std::size_t(bi) * c + ch) * s + (i / grid) * pp + y) * s +
                                   (i % grid) * pp + xx];
        ck.add("im2col" + tag, relErr(cols.read(), ref), tol);
        DevArray emb(p, randomVec(g, std::size_t(b) * n * d, 1.0f));
        const std::vector<float> bias = randomVec(g, d, 1.0f), cls = randomVec(g, d, 1.0f),
                                 pos = randomVec(g, std::size_t(n + 1) * d, 1.0f);
        DeviceBuffer<float> dbias, dcls, dpos;
        dbias.upload(bias.data(), bias.size());
        dcls.upload(cls.data(), cls.size());
        dpos.upload(pos.data(), pos.size());
        DevArray x(p, std::size_t(b) * (n + 1) * d);
        kv::embed(p, emb.get(), dbias.get(), dcls.get(), dpos.get(), b, n, d, x.get(), nullptr);
        std::vector<double> xr(std::size_t(b) * (n + 1) * d);
        for (int bi = 0; bi < b; ++bi)
            for (int i = 0; i <= n; ++i)
                for (int f = 0; f < d; ++f)
                    xr[(std::size_t(bi) * (n + 1) + i) * d + f] =
                        pos[std::size_t(i) * d + f] +
                        (i == 0 ? cls[f]
                                : emb.seen[(std::size_t(bi) * n + i - 1) * d + f] + bias[f]);
        ck.add("embed" + tag, relErr(x.read(), xr), tol * 2);
    }
}

void checkForward(Checker& ck, const std::shared_ptr<const VitModel>& model, const float* pixels,
                  i64 count, bool fp16) {
    const VitConfig& c = config(*model);
    const i64 px = c.channels * c.imageSize * c.imageSize;
    VitGpu gpu(model, fp16);
    const std::string tag = fp16 ? " fp16" : " fp32";
    const i64 r = std::max<i64>(1, std::min<i64>(8, c.patches / (2 * c.depth)));
    for (ModelMethod m : {ModelMethod::None, ModelMethod::ToMe, ModelMethod::QuickMerge,
                          ModelMethod::TopK, ModelMethod::Random}) {
        HookParams hp;
        hp.method = m;
        if (m != ModelMethod::None) hp.schedule = constantSchedule(r);
        ForwardOptions opt;
        opt.keepSources = true;
        const std::vector<ForwardResult> got = gpu.forward(pixels, count, hp, 0, opt);
        double err = 0;
        i64 same = 0, agree = 0;
        for (i64 i = 0; i < count; ++i) {
            const ForwardResult want = vitForward(*model, pixels + i * px, hp, i, opt);
            const std::vector<double> a(got[i].logits.begin(), got[i].logits.end()),
                b(want.logits.begin(), want.logits.end());
            err = std::max(err, relErr(a, b));
            same += got[i].owner == want.owner;
            agree += std::max_element(a.begin(), a.end()) - a.begin() ==
                     std::max_element(b.begin(), b.end()) - b.begin();
        }
        const std::string what = std::string("forward ") + toString(m) +
                                 (m == ModelMethod::None ? "" : " r=" + std::to_string(r)) + tag;
        const std::string note = "decisions equal in " + std::to_string(same) + "/" +
                                 std::to_string(count) + " items, top-1 equal in " +
                                 std::to_string(agree) + "/" + std::to_string(count);
        if (!fp16)
            ck.add(what, err, 1e-4, note);
        else if (m == ModelMethod::None)
            ck.add(what, err, 2e-2, note);
        else // FP16 may take other merge decisions: the answers must agree
            ck.add(what + " (top-1 disagreement)", 1.0 - double(agree) / double(count), 0.1,
                   note + ", logit error " + std::to_string(err));
    }
}

} // namespace

std::vector<GpuModelCheck> checkVitGpu(const std::shared_ptr<const VitModel>& model,
                                       const float* pixels, i64 count, std::ostream& log) {
    Checker ck{{}, log};
    log << "  kernels against float64 references\n";
    checkKernels(ck, Prec::F32);
    checkKernels(ck, Prec::F16);
    log << "  the forward on " << count << " item(s): GPU against CPU\n";
    checkForward(ck, model, pixels, count, false);
    checkForward(ck, model, pixels, count, true);
    return ck.rows;
}

} // namespace qmpp
