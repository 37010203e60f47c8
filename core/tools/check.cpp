// `qmpp check`: kernels (and the CPU backend's steps) against float64 references.
// Tolerances: |out - ref| <= atol + rtol |ref| per element. FP32: rtol 1e-4, atol 1e-5.
// FP16 (half storage, float accumulation) is compared with a reference computed from the same
// half-rounded inputs: rtol 1e-3, atol 1e-4. Entropies lie in [0, ln N] and peaked rows sit
// near 0, where float scores (|z| in the hundreds for real photos) leave an absolute error:
// their atol is rtol * ln N. Discrete outputs (top-K, assignment) must be
// exact, or optimal within 1e-5 of the best similarity (a near-tie).
#include "qmpp/check.h"
#include "qmpp/array.h"
#include "qmpp/bench.h"
#include "qmpp/engine.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"

#ifdef QMPP_HAVE_CUDA
#include "qmpp/cuda_backend.h"
#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"
#endif

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <ostream>
#include <random>
#include <sstream>

namespace qmpp {

namespace {

struct Tol {
    double atol, rtol;
};
constexpr Tol kF32{1e-5, 1e-4}, kF16{1e-4, 1e-3};

struct Cmp {
    double maxRel = 0;
    bool pass = true;
    std::string note;
};

template <class Out> Cmp compare(const Out* out, const double* ref, std::size_t n, Tol t) {
    Cmp c;
    for (std::size_t i = 0; i < n; ++i) {
        const double o = double(out[i]);
        if (!std::isfinite(o)) {
            if (c.pass) c.note = "non-finite output at " + std::to_string(i) + " (unwritten?)";
            c.pass = false;
            c.maxRel = INFINITY;
            continue;
        }
        const double err = std::abs(o - ref[i]);
        c.maxRel = std::max(c.maxRel, err / std::max(std::abs(ref[i]), t.atol / t.rtol));
        if (err > t.atol + t.rtol * std::abs(ref[i])) {
            if (c.pass) c.note = "first bad element " + std::to_string(i);
            c.pass = false;
        }
    }
    return c;
}

Tol entropyTol(Tol t, i64 n) {
    return {t.rtol * std::log(double(std::max<i64>(n, 2))), t.rtol};
}

std::vector<float> roundHalf(std::vector<float> v) {
    for (auto& e : v)
        e = halfToFloat(floatToHalf(e));
    return v;
}

struct Input {
    std::string name;
    i64 n, d;
    std::vector<float> x;
};

// ---- float64 references --------------------------------------------------------------------

// Entropy of softmax_row(beta q_i . k_j) for the given rows; [betas, rows].
std::vector<double> refEntropy(const std::vector<float>& x, i64 n, i64 d,
                               const std::vector<double>& betas, const std::vector<i64>& rows) {
    std::vector<double> out(betas.size() * rows.size());
    std::vector<double> dots(static_cast<std::size_t>(n));
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const i64 i = rows[r];
        for (i64 j = 0; j < n; ++j) {
            double s = 0;
            for (i64 k = 0; k < d; ++k)
                s += double(x[i * d + k]) * x[j * d + k];
            dots[j] = s;
        }
        for (std::size_t l = 0; l < betas.size(); ++l) {
            double mx = -INFINITY;
            for (double v : dots)
                mx = std::max(mx, betas[l] * v);
            double se = 0, sez = 0;
            for (double v : dots) {
                const double z = betas[l] * v - mx, e = std::exp(z);
                se += e;
                sez += e * z;
            }
            out[l * rows.size() + r] = std::log(se) - sez / se;
        }
    }
    return out;
}

[[maybe_unused]] std::vector<double> refEntropyMaps(const std::vector<float>& a, i64 layers,
                                                    i64 heads, i64 n) {
    std::vector<double> out(static_cast<std::size_t>(layers * n), 0.0);
    for (i64 l = 0; l < layers; ++l)
        for (i64 i = 0; i < n; ++i) {
            for (i64 h = 0; h < heads; ++h) {
                const float* row = &a[((l * heads + h) * n + i) * n];
                double sum = 0, e = 0;
                for (i64 j = 0; j < n; ++j)
                    sum += row[j];
                for (i64 j = 0; j < n; ++j)
                    if (row[j] > 0) e -= row[j] / sum * std::log(row[j] / sum);
                out[l * n + i] += e / double(heads);
            }
        }
    return out;
}

std::vector<double> refSaliency(const std::vector<float>& h, i64 layers, i64 n) {
    std::vector<double> s(static_cast<std::size_t>(n), 0.0);
    for (i64 l = 0; l < layers; ++l) {
        const auto [lo, hi] = std::minmax_element(&h[l * n], &h[l * n] + n);
        if (!(*hi - *lo > 1e-6 * std::max(1.0f, std::abs(*hi)))) continue;
        for (i64 i = 0; i < n; ++i)
            s[i] += (double(h[l * n + i]) - *lo) / (double(*hi) - *lo);
    }
    for (auto& v : s)
        v = 1.0 - v / double(layers);
    return s;
}

[[maybe_unused]] std::vector<double> refCosine(const std::vector<float>& a, i64 m,
                                               const std::vector<float>& b, i64 n, i64 d) {
    std::vector<double> out(static_cast<std::size_t>(m * n));
    for (i64 i = 0; i < m; ++i)
        for (i64 j = 0; j < n; ++j)
            out[i * n + j] = cosine(&a[i * d], &b[j * d], d);
    return out;
}

// Normalized mass-weighted group sums [K, D].
[[maybe_unused]] std::vector<double> refCentres(const std::vector<float>& x, i64 n, i64 d,
                                                const std::vector<int>& labels,
                                                const std::vector<float>& mass, i64 k) {
    std::vector<double> c(static_cast<std::size_t>(k * d), 0.0);
    for (i64 i = 0; i < n; ++i)
        for (i64 f = 0; f < d; ++f)
            c[labels[i] * d + f] += double(mass[i]) * x[i * d + f];
    for (i64 g = 0; g < k; ++g) {
        double ss = 0;
        for (i64 f = 0; f < d; ++f)
            ss += c[g * d + f] * c[g * d + f];
        for (i64 f = 0; f < d; ++f)
            c[g * d + f] = ss > 0 ? c[g * d + f] / std::sqrt(ss) : 0.0;
    }
    return c;
}

// Per-position AR errors [2, K-1] in double.
std::vector<double> refAr(const std::vector<float>& merged, i64 k, i64 d, const ArHeads& h,
                          bool half) {
    const i64 m = k - 1, hd = ArHeads::kHidden;
    auto w = [&](const std::vector<float>& v) { return half ? roundHalf(v) : v; };
    const std::vector<float> W1[2] = {w(h.fw1), w(h.bw1)}, B1[2] = {w(h.fb1), w(h.bb1)};
    const std::vector<float> W2[2] = {w(h.fw2), w(h.bw2)}, B2[2] = {w(h.fb2), w(h.bb2)};
    std::vector<double> err(static_cast<std::size_t>(2 * std::max<i64>(m, 0)));
    std::vector<double> v(static_cast<std::size_t>(d)), hid(static_cast<std::size_t>(hd));
    for (int dir = 0; dir < 2; ++dir)
        for (i64 t = 0; t < m; ++t) {
            const i64 lo = dir == 0 ? 0 : t + 1, hi = dir == 0 ? t : k - 1;
            for (i64 f = 0; f < d; ++f) {
                double s = 0;
                for (i64 q = lo; q <= hi; ++q)
                    s += merged[q * d + f];
                v[f] = s / double(hi - lo + 1);
            }
            for (i64 u = 0; u < hd; ++u) {
                double s = B1[dir][u];
                for (i64 f = 0; f < d; ++f)
                    s += double(W1[dir][u * d + f]) * v[f];
                hid[u] = std::max(0.0, s);
            }
            const i64 target = dir == 0 ? t + 1 : t;
            double e = 0;
            for (i64 f = 0; f < d; ++f) {
                double o = B2[dir][f];
                for (i64 u = 0; u < hd; ++u)
                    o += double(W2[dir][f * hd + u]) * hid[u];
                e += (o - merged[target * d + f]) * (o - merged[target * d + f]);
            }
            err[dir * m + t] = e / double(d);
        }
    return err;
}

// Random group labels with every group non-empty, and positive masses.
// founderOf of a foreground: c at idx[c], -1 elsewhere.
[[maybe_unused]] std::vector<int> founderMap(const std::vector<i64>& idx, i64 n) {
    std::vector<int> f(static_cast<std::size_t>(n), -1);
    for (std::size_t c = 0; c < idx.size(); ++c)
        f[idx[c]] = static_cast<int>(c);
    return f;
}

void randomGroups(i64 n, i64 k, std::mt19937_64& rng, std::vector<int>& labels,
                  std::vector<float>& mass) {
    labels.resize(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
        labels[i] = static_cast<int>(i % k);
    std::shuffle(labels.begin(), labels.end(), rng);
    std::uniform_real_distribution<float> u(0.01f, 1.0f);
    mass.resize(static_cast<std::size_t>(n));
    for (auto& m : mass)
        m = u(rng);
}

class Printer {
  public:
    explicit Printer(std::ostream& out) : m_out(out) {
        m_out << std::left << std::setw(13) << "kernel" << std::setw(10) << "version"
              << std::setw(6) << "prec" << std::setw(18) << "input" << std::right << std::setw(7)
              << "N" << std::setw(6) << "D" << std::setw(13) << "max rel err" << std::setw(9)
              << "rtol"
              << "  result\n";
    }
    void row(CheckRow r) {
        m_out << std::left << std::setw(13) << r.kernel << std::setw(10) << r.version
              << std::setw(6) << r.precision << std::setw(18) << r.input << std::right
              << std::setw(7) << r.n << std::setw(6) << r.d << std::setw(13) << std::scientific
              << std::setprecision(2) << r.maxRelErr << std::setw(9) << r.rtol << std::defaultfloat
              << "  " << (r.pass ? "PASS" : "FAIL") << (r.note.empty() ? "" : "  (" + r.note + ")")
              << "\n";
        m_rows.push_back(std::move(r));
    }
    void add(const std::string& kernel, const std::string& version, const std::string& prec,
             const Input& in, const Cmp& c, Tol t) {
        row({kernel, version, prec, in.name, in.n, in.d, c.maxRel, t.rtol, t.atol, c.pass, c.note});
    }
    void skipped(const std::string& kernel, const std::string& version, const std::string& prec,
                 const Input& in) {
        m_out << std::left << std::setw(13) << kernel << std::setw(10) << version << std::setw(6)
              << prec << std::setw(18) << in.name << std::right << std::setw(7) << in.n
              << std::setw(6) << in.d << "  SKIP  (no " << version << " version yet)\n";
    }
    std::vector<CheckRow>& rows() { return m_rows; }

  private:
    std::ostream& m_out;
    std::vector<CheckRow> m_rows;
};

// ---- the CPU backend's steps ---------------------------------------------------------------

void checkCpu(const Input& in, std::mt19937_64& rng, Printer& pr) {
    const i64 n = in.n, d = in.d;
    const Tol tol = kF32;
    std::vector<i64> rows(static_cast<std::size_t>(n));
    std::iota(rows.begin(), rows.end(), i64(0));
    const int layers = 3;
    std::vector<double> betas(layers);
    for (int l = 0; l < layers; ++l)
        betas[l] = multiScaleFactor(l, layers) / std::sqrt(double(d));
    const auto ref = refEntropy(in.x, n, d, betas, rows);
    const auto got = entropyMultiScale(in.x.data(), n, d, layers);
    const Tol etol = entropyTol(tol, n);
    pr.add("entropy_gram", "cpu", "fp32", in, compare(got.data(), ref.data(), ref.size(), etol),
           etol);

    std::vector<float> hf(got.begin(), got.end());
    const auto sref = refSaliency(hf, layers, n);
    const auto s = saliencyFromEntropy(got, layers, n);
    pr.add("saliency", "cpu", "fp32", in, compare(s.data(), sref.data(), s.size(), tol), tol);

    const i64 k = std::max<i64>(1, n / 5);
    std::vector<int> groups;
    std::vector<float> mass;
    randomGroups(n, k, rng, groups, mass);
    std::vector<i64> labels(groups.begin(), groups.end());
    std::vector<float> merged;
    std::vector<i64> sizes;
    mergeWeighted(in.x.data(), n, d, mass, labels, k, merged, sizes);
    // reference: groups reordered by first token
    std::vector<i64> first(static_cast<std::size_t>(k), n);
    for (i64 i = 0; i < n; ++i)
        first[groups[i]] = std::min(first[groups[i]], i);
    std::vector<i64> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), i64(0));
    std::sort(order.begin(), order.end(), [&](i64 a, i64 b) { return first[a] < first[b]; });
    std::vector<double> mref(static_cast<std::size_t>(k * d), 0.0),
        msum(static_cast<std::size_t>(k), 0.0);
    std::vector<i64> rank(static_cast<std::size_t>(k));
    for (i64 r = 0; r < k; ++r)
        rank[order[r]] = r;
    bool labelsOk = true;
    for (i64 i = 0; i < n; ++i) {
        labelsOk &= labels[i] == rank[groups[i]];
        msum[rank[groups[i]]] += mass[i];
        for (i64 f = 0; f < d; ++f)
            mref[rank[groups[i]] * d + f] += double(mass[i]) * in.x[i * d + f];
    }
    for (i64 g = 0; g < k; ++g)
        for (i64 f = 0; f < d; ++f)
            mref[g * d + f] /= msum[g];
    Cmp c = compare(merged.data(), mref.data(), mref.size(), tol);
    if (!labelsOk) c = {c.maxRel, false, "labels not in first-token order"};
    pr.add("merge", "cpu", "fp32", in, c, tol);

    if (k >= 2) {
        std::vector<float> mk(merged.begin(), merged.end());
        const auto heads = defaultArHeads(d);
        Losses l;
        std::vector<double> ef, eb;
        arLoss(mk, k, d, *heads, l, ef, eb);
        ef.insert(ef.end(), eb.begin(), eb.end());
        const auto aref = refAr(mk, k, d, *heads, false);
        pr.add("ar_heads", "cpu", "fp32", in, compare(ef.data(), aref.data(), aref.size(), tol),
               tol);
    }
}

#ifdef QMPP_HAVE_CUDA
namespace kk = kernels;

// ---- the kernels ---------------------------------------------------------------------------

struct Dev {
    kk::DeviceBuffer<float> f32;
    kk::DeviceBuffer<std::uint16_t> f16;
    // Uploads v in the precision's storage; returns the device pointer.
    const void* put(const std::vector<float>& v, kk::Prec p) {
        f32.upload(v.data(), v.size());
        if (p == kk::Prec::F32) return f32.get();
        f16.resize(v.size());
        kk::toHalf(f32.get(), f16.get(), v.size(), nullptr);
        return f16.get();
    }
};

template <class T> std::vector<T> fetch(const kk::DeviceBuffer<T>& b, std::size_t n) {
    std::vector<T> v(n);
    b.download(v.data(), n);
    QMPP_CUDA_CHECK(cudaDeviceSynchronize());
    return v;
}

template <class T> void poison(kk::DeviceBuffer<T>& b, std::size_t n) {
    b.resize(n);
    b.fillBytes(0xff);
}

void checkKernels(const Input& in, kk::Version v, kk::Prec p, std::mt19937_64& rng, Printer& pr,
                  const std::vector<i64>* entropyRows) {
    const std::string vn = kk::versionName(v), pn = kk::precName(p);
    const Tol tol = p == kk::Prec::F16 ? kF16 : kF32;
    const i64 n = in.n, d = in.d;
    const std::vector<float> x =
        p == kk::Prec::F16 ? roundHalf(in.x) : in.x; // what the device sees
    Dev dx;
    const void* X = dx.put(in.x, p);
    // the optimized FP16 kernels' warpgroup tiles, checked forced where they run (16-byte rows)
    const bool warpgroups =
        v == kk::Version::Optimized && p == kk::Prec::F16 && kk::warpgroupTiles() && d % 8 == 0;
    auto skip = [&](kk::Kernel kern) {
        if (kk::available(kern, v)) return false;
        pr.skipped(kk::kernelName(kern), vn, pn, in); // neither a pass nor a failure
        return true;
    };

    // entropy_gram: multi-scale (3 scales) on the tokens; two hidden-state sources (the tokens
    // and the tokens in reverse order at half scale); the optimized version in both schedules.
    if (!skip(kk::Kernel::EntropyGram)) {
        std::vector<i64> rows;
        if (entropyRows)
            rows = *entropyRows;
        else {
            rows.resize(static_cast<std::size_t>(n));
            std::iota(rows.begin(), rows.end(), i64(0));
        }
        using Tiles = kk::EntropyGramParams::Tiles;
        auto gram = [&](const void* src, int sources, const std::vector<double>& betas, bool panels,
                        Tiles tiles = Tiles::Auto) {
            kk::EntropyGramParams gp;
            gp.x = src;
            gp.sources = sources;
            gp.n = static_cast<int>(n);
            gp.d = static_cast<int>(d);
            gp.scales = static_cast<int>(betas.size());
            for (std::size_t l = 0; l < betas.size(); ++l)
                gp.beta[l] = float(betas[l]);
            gp.rowPanels = panels;
            gp.tiles = tiles;
            const std::size_t outs = std::size_t(sources) * betas.size() * std::size_t(n);
            kk::DeviceBuffer<float> h;
            poison(h, outs);
            gp.h = h.get();
            gp.workBytes = kk::entropyGramWorkBytes(gp, v, p);
            kk::DeviceBuffer<std::uint8_t> work(std::max<std::size_t>(gp.workBytes, 1));
            work.fillBytes(0xff); // unwritten partials would show as NaN
            gp.work = work.get();
            kk::entropyGram(gp, v, p, nullptr);
            return fetch(h, outs);
        };
        const Tol etol = entropyTol(tol, n);
        const int scales = entropyRows ? 1 : 3;
        std::vector<double> betas(scales);
        for (int l = 0; l < scales; ++l)
            betas[l] = float(multiScaleFactor(l, scales) / std::sqrt(double(d)));
        const auto ref = refEntropy(x, n, d, betas, rows);
        for (bool panels : {false, true}) {
            if (panels && v == kk::Version::Basic) continue;
            const auto all = gram(X, 1, betas, panels);
            std::vector<float> got;
            for (int l = 0; l < scales; ++l)
                for (i64 r : rows)
                    got.push_back(all[l * n + r]);
            Input named = {in.name + (panels ? " (row panels)" : ""), n, d, {}};
            pr.add("entropy_gram", vn, pn, named, compare(got.data(), ref.data(), ref.size(), etol),
                   etol);
        }
        if (entropyRows) return; // the large case checks this kernel alone
        // hidden states: source 1 is the tokens reversed, at half scale
        std::vector<float> second(in.x.size());
        for (i64 i = 0; i < n; ++i)
            for (i64 f = 0; f < d; ++f)
                second[i * d + f] = 0.5f * in.x[(n - 1 - i) * d + f];
        std::vector<float> both = in.x;
        both.insert(both.end(), second.begin(), second.end());
        Dev dh;
        const void* H = dh.put(both, p);
        const std::vector<double> beta1 = {float(1 / std::sqrt(double(d)))};
        const auto got = gram(H, 2, beta1, false);
        auto ref2 = refEntropy(x, n, d, beta1, rows);
        const auto refB =
            refEntropy(p == kk::Prec::F16 ? roundHalf(second) : second, n, d, beta1, rows);
        ref2.insert(ref2.end(), refB.begin(), refB.end());
        Input named = {in.name + " (2 hidden layers)", n, d, {}};
        pr.add("entropy_gram", vn, pn, named, compare(got.data(), ref2.data(), ref2.size(), etol),
               etol);
        // FP16's other tile shapes on the same layers (the sizes here pick 128 x 128 by themselves)
        if (v == kk::Version::Optimized && p == kk::Prec::F16)
            for (auto [tiles, label] :
                 {std::pair{Tiles::Wide, " (2 hidden layers, 128x256 tiles)"},
                  std::pair{Tiles::WidePersistent, " (2 hidden layers, persistent 128x256 tiles)"},
                  std::pair{Tiles::WarpGroup, " (2 hidden layers, warpgroup 128x256 tiles)"}}) {
                if (tiles == Tiles::WarpGroup && !warpgroups) continue;
                const auto g = gram(H, 2, beta1, false, tiles);
                Input shaped = {in.name + label, n, d, {}};
                pr.add("entropy_gram", vn, pn, shaped,
                       compare(g.data(), ref2.data(), ref2.size(), etol), etol);
            }
    }

    // entropy_maps: [2 layers, 2 heads, N, N] positive maps with some exact zeros
    if (!skip(kk::Kernel::EntropyMaps) && n <= 600) {
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        std::vector<float> a(static_cast<std::size_t>(4 * n * n));
        for (std::size_t i = 0; i < a.size(); ++i)
            a[i] = (i % 11 == 3) ? 0.0f : u(rng) + 0.01f;
        const auto ah = p == kk::Prec::F16 ? roundHalf(a) : a;
        Dev da;
        kk::EntropyMapsParams ep;
        ep.a = da.put(a, p);
        ep.layers = 2;
        ep.heads = 2;
        ep.n = static_cast<int>(n);
        kk::DeviceBuffer<float> h;
        poison(h, 2 * n);
        ep.h = h.get();
        kk::entropyMaps(ep, v, p, nullptr);
        const auto got = fetch(h, 2 * n);
        const auto ref = refEntropyMaps(ah, 2, 2, n);
        const Tol etol = entropyTol(tol, n);
        pr.add("entropy_maps", vn, pn, in, compare(got.data(), ref.data(), ref.size(), etol), etol);
    }

    // saliency (precision-independent input): 3 layers, one of them constant
    if (!skip(kk::Kernel::Saliency)) {
        std::uniform_real_distribution<float> u(0.5f, 6.0f);
        std::vector<float> h(static_cast<std::size_t>(3 * n));
        for (i64 i = 0; i < 3 * n; ++i)
            h[i] = i / n == 1 ? 2.5f : u(rng);
        kk::DeviceBuffer<float> dh, mm, s;
        dh.upload(h.data(), h.size());
        mm.resize(6);
        poison(s, n);
        kk::SaliencyParams sp{dh.get(), 3, static_cast<int>(n), mm.get(), s.get()};
        kk::saliency(sp, v, nullptr);
        const auto got = fetch(s, n);
        const auto ref = refSaliency(h, 3, n);
        pr.add("saliency", vn, pn, in, compare(got.data(), ref.data(), ref.size(), tol), tol);
    }

    // cosine: up to 200 rows against all, and all against all (the symmetric schedule) up to
    // N = 1000; FP16 also on the tiles Auto does not pick here
    if (!skip(kk::Kernel::Cosine)) {
        using Tiles = kk::CosineParams::Tiles;
        std::vector<std::pair<Tiles, std::string>> shapes = {{Tiles::Auto, ""}};
        if (warpgroups) shapes.push_back({Tiles::MmaSync, ", mma.sync tiles"});
        std::vector<i64> rowCounts = {std::min<i64>(n, 200)};
        if (n > 200 && n <= 1000) rowCounts.push_back(n);
        for (const i64 m : rowCounts) {
            const auto ref = refCosine(x, m, x, n, d);
            for (const auto& [tiles, label] : shapes) {
                kk::CosineParams cp;
                cp.a = X;
                cp.b = X;
                cp.m = static_cast<int>(m);
                cp.n = static_cast<int>(n);
                cp.d = static_cast<int>(d);
                cp.tiles = tiles;
                kk::DeviceBuffer<float> out;
                poison(out, m * n);
                cp.out = out.get();
                kk::DeviceBuffer<float> inv(m + n);
                cp.scratch = inv.get();
                kk::cosine(cp, v, p, nullptr);
                const auto got = fetch(out, m * n);
                Input named = {in.name +
                                   (m == n ? " (all pairs" : " (" + std::to_string(m) + " rows") +
                                   label + ")",
                               n,
                               d,
                               {}};
                pr.add("cosine", vn, pn, named,
                       compare(got.data(), ref.data(), ref.size(), Tol{tol.atol * 10, tol.rtol}),
                       tol);
            }
        }
    }

    // gumbel + top-K on saliency in [0, 1] and Philox uniforms
    const i64 k = std::max<i64>(1, n / 5);
    std::vector<float> keysHost;
    if (!skip(kk::Kernel::Gumbel)) {
        std::uniform_real_distribution<float> u01(0.0f, 1.0f);
        std::vector<float> s(static_cast<std::size_t>(n));
        for (auto& e : s)
            e = u01(rng);
        const auto uh = philoxUniforms(n, rng());
        kk::DeviceBuffer<float> ds, du, keys, pi, mass, scratch;
        ds.upload(s.data(), s.size());
        du.upload(uh.data(), uh.size());
        poison(keys, n);
        poison(pi, n);
        poison(mass, n);
        scratch.resize(2);
        kk::GumbelParams gp{ds.get(),   du.get(), static_cast<int>(n), 0.3f,         0.01f,
                            keys.get(), pi.get(), mass.get(),          scratch.get()};
        kk::gumbel(gp, v, nullptr);
        keysHost = fetch(keys, n);
        const auto piH = fetch(pi, n), massH = fetch(mass, n);
        std::vector<double> rk(static_cast<std::size_t>(n)), rp(rk.size()), rm(rk.size());
        double mx = -INFINITY, z = 0;
        for (i64 i = 0; i < n; ++i)
            mx = std::max(mx, (rk[i] = s[i] - std::log(-std::log(double(uh[i])))) / 0.3);
        for (i64 i = 0; i < n; ++i)
            z += std::exp(rk[i] / 0.3 - mx);
        for (i64 i = 0; i < n; ++i) {
            rp[i] = std::exp(rk[i] / 0.3 - mx) / z;
            rm[i] = rp[i] * s[i] + (1 - rp[i]) * 0.01;
        }
        // pi (against a tighter absolute floor) and mass, merged into c
        auto addPiMass = [&](Cmp& c, const std::vector<float>& piGot,
                             const std::vector<float>& massGot) {
            const Cmp c2 = compare(piGot.data(), rp.data(), rp.size(), Tol{1e-7, tol.rtol * 10});
            const Cmp c3 = compare(massGot.data(), rm.data(), rm.size(), tol);
            c.maxRel = std::max({c.maxRel, c2.maxRel / 10, c3.maxRel});
            c.pass = c.pass && c2.pass && c3.pass;
            if (c.note.empty())
                c.note = !c2.note.empty()  ? "pi: " + c2.note
                         : c3.note.empty() ? ""
                                           : "mass: " + c3.note;
        };
        Cmp c = compare(keysHost.data(), rk.data(), rk.size(), tol);
        addPiMass(c, piH, massH);
        pr.add("gumbel", vn, "fp32", in, c, tol);
        if (v == kk::Version::Optimized) { // the fused launch: the same keys, pi, mass and top-K
            kk::DeviceBuffer<int> sel, idx, fo;
            sel.resize(n);
            poison(idx, k);
            poison(fo, n);
            poison(keys, n);
            poison(pi, n);
            poison(mass, n);
            kk::TopKParams tp{keys.get(), static_cast<int>(n), static_cast<int>(k),
                              sel.get(),  idx.get(),           fo.get()};
            kk::gumbelTopK(gp, tp, v, nullptr);
            Cmp f;
            addPiMass(f, fetch(pi, n), fetch(mass, n));
            if (fetch(keys, n) != keysHost)
                f = {f.maxRel, false, "keys differ from the gumbel kernel's"};
            const auto ref = topK(std::vector<double>(keysHost.begin(), keysHost.end()), k);
            const auto got = fetch(idx, k);
            if (!std::equal(got.begin(), got.end(), ref.begin()))
                f = {f.maxRel, false, "top-K indices differ"};
            else if (fetch(fo, n) != founderMap(ref, n))
                f = {f.maxRel, false, "founderOf differs"};
            pr.add("gumbel_topk", vn, "fp32", in, f, tol);
        }
    }
    if (!skip(kk::Kernel::TopK) && !keysHost.empty()) {
        // the Gumbel keys, then the same keys rounded to 0.5 (many ties, broken by index)
        std::vector<float> tied = keysHost;
        for (auto& e : tied)
            e = std::round(e * 2) / 2;
        for (const auto* keysIn : {&keysHost, &tied}) {
            kk::DeviceBuffer<float> keys;
            keys.upload(keysIn->data(), keysIn->size());
            kk::DeviceBuffer<int> sel, idx, fo;
            sel.resize(n);
            poison(idx, k);
            poison(fo, n);
            kk::TopKParams tp{keys.get(), static_cast<int>(n), static_cast<int>(k), sel.get(),
                              idx.get()};
            if (v == kk::Version::Optimized) tp.founderOf = fo.get();
            kk::topK(tp, v, nullptr);
            const auto got = fetch(idx, k);
            const auto ref = topK(std::vector<double>(keysIn->begin(), keysIn->end()), k);
            bool same = std::equal(got.begin(), got.end(), ref.begin());
            std::string note = same ? "" : "indices differ";
            if (same && tp.founderOf) {
                if (fetch(fo, n) != founderMap(ref, n)) {
                    same = false;
                    note = "founderOf differs";
                }
            }
            const std::string name = in.name + (keysIn == &tied ? " (ties)" : "");
            pr.row({"topk", vn, "fp32", name, n, d, same ? 0.0 : 1.0, 0, 0, same, note});
        }
    }

    // assign and centres on random groups; merge; metrics
    std::vector<int> groups;
    std::vector<float> mass;
    randomGroups(n, k, rng, groups, mass);
    kk::DeviceBuffer<int> dgroups;
    kk::DeviceBuffer<float> dmass;
    dgroups.upload(groups.data(), groups.size());
    dmass.upload(mass.data(), mass.size());
    const auto cref = refCentres(x, n, d, groups, mass, k);
    std::vector<float> centresF(cref.begin(), cref.end());
    if (!skip(kk::Kernel::Centres)) {
        kk::DeviceBuffer<float> c;
        poison(c, k * d);
        kk::CentresParams cp;
        cp.x = X;
        cp.n = static_cast<int>(n);
        cp.d = static_cast<int>(d);
        cp.k = static_cast<int>(k);
        cp.labels = dgroups.get();
        cp.mass = dmass.get();
        cp.centres = c.get();
        kk::centres(cp, v, p, nullptr);
        const auto got = fetch(c, k * d);
        pr.add("centres", vn, pn, in, compare(got.data(), cref.data(), cref.size(), tol), tol);
    }
    if (!skip(kk::Kernel::Assign)) {
        // founders: the first member of each group
        std::vector<int> founderOf(static_cast<std::size_t>(n), -1);
        std::vector<bool> seen(static_cast<std::size_t>(k), false);
        for (i64 i = 0; i < n; ++i)
            if (!seen[groups[i]]) {
                seen[groups[i]] = true;
                founderOf[i] = groups[i];
            }
        kk::DeviceBuffer<float> dc;
        dc.upload(centresF.data(), centresF.size());
        kk::DeviceBuffer<int> dfo, lab;
        dfo.upload(founderOf.data(), founderOf.size());
        kk::DeviceBuffer<std::uint16_t> halves(2 * k * d);
        kk::DeviceBuffer<std::uint8_t> part(kk::assignPartialBytes(int(n), int(d), int(k)));
        // each token's cosine to every centre, and its best (the reference of every tile kind)
        std::vector<double> sim(static_cast<std::size_t>(n * k)),
            best(static_cast<std::size_t>(n), -INFINITY);
        for (i64 i = 0; i < n; ++i) {
            double nx = 0;
            for (i64 f = 0; f < d; ++f)
                nx += double(x[i * d + f]) * x[i * d + f];
            nx = std::max(std::sqrt(nx), 1e-30);
            for (i64 cc = 0; cc < k; ++cc) {
                double s = 0;
                for (i64 f = 0; f < d; ++f)
                    s += double(x[i * d + f]) * centresF[cc * d + f];
                sim[i * k + cc] = s / nx;
                best[i] = std::max(best[i], sim[i * k + cc]);
            }
        }
        using Tiles = kk::AssignParams::Tiles;
        auto runAssign = [&](Tiles tiles, const std::string& name) {
            poison(lab, n);
            kk::AssignParams ap;
            ap.x = X;
            ap.n = static_cast<int>(n);
            ap.d = static_cast<int>(d);
            ap.k = static_cast<int>(k);
            ap.centres = dc.get();
            ap.founderOf = dfo.get();
            ap.labels = lab.get();
            ap.centresHalf = halves.get();
            ap.partial = part.get();
            ap.tiles = tiles;
            kk::assign(ap, v, p, nullptr);
            const auto got = fetch(lab, n);
            Cmp c;
            for (i64 i = 0; i < n; ++i) {
                if (founderOf[i] >= 0) {
                    if (got[i] != founderOf[i])
                        c = {1.0, false, "founder " + std::to_string(i) + " moved"};
                    continue;
                }
                if (got[i] < 0 || got[i] >= k) {
                    c = {INFINITY, false, "label out of range at " + std::to_string(i)};
                    break;
                }
                const double gap = best[i] - sim[i * k + got[i]];
                c.maxRel = std::max(c.maxRel, gap);
                if (gap > 1e-5 && c.pass)
                    c = {gap, false, "token " + std::to_string(i) + " not at its best centre"};
            }
            pr.row({"assign", vn, pn, name, n, d, c.maxRel, 1e-5, 0, c.pass,
                    c.note.empty() ? "max cosine gap to the best" : c.note});
        };
        runAssign(Tiles::Auto, in.name);
        // FP16's 128 x 256 tiles (the sizes here pick 128 x 128 by themselves)
        if (v == kk::Version::Optimized && p == kk::Prec::F16)
            runAssign(Tiles::Wide, in.name + " (128x256 tiles)");
        if (warpgroups) runAssign(Tiles::WarpGroup, in.name + " (warpgroup tiles)");
    }
    if (!skip(kk::Kernel::Merge)) {
        // optimized: with the segment scratch (sorted segments, N <= 8192), then with one group
        // left empty, then without the scratch (v1)
        for (const int variant : {0, 1, 2}) {
            if (variant > 0 && v != kk::Version::Optimized) continue;
            const bool segments = variant < 2;
            std::vector<int> gin = groups;
            if (variant == 1)
                for (auto& g : gin)
                    g = g == k / 2 ? 0 : g;
            kk::DeviceBuffer<int> lab, first, rank, sizes, order;
            lab.upload(gin.data(), gin.size());
            first.resize(k);
            rank.resize(k);
            order.resize(n);
            poison(sizes, k);
            kk::DeviceBuffer<float> merged;
            poison(merged, k * d);
            kk::MergeParams mp{X,
                               static_cast<int>(n),
                               static_cast<int>(d),
                               static_cast<int>(k),
                               dmass.get(),
                               lab.get(),
                               first.get(),
                               rank.get(),
                               merged.get(),
                               sizes.get(),
                               segments ? order.get() : nullptr};
            kk::merge(mp, v, p, nullptr);
            const auto got = fetch(merged, k * d);
            const auto gotLabels = fetch(lab, n);
            const auto gotSizes = fetch(sizes, k);
            std::vector<i64> refLabels(gin.begin(), gin.end());
            std::vector<float> refMerged;
            std::vector<i64> refSizes;
            // mergeWeighted is the CPU step checked above against its own double reference
            mergeWeighted(x.data(), n, d, mass, refLabels, k, refMerged, refSizes);
            std::vector<double> mref(refMerged.begin(), refMerged.end());
            Cmp c = compare(got.data(), mref.data(), mref.size(),
                            Tol{tol.atol, std::max(tol.rtol, 1e-5)});
            if (!std::equal(gotLabels.begin(), gotLabels.end(), refLabels.begin()))
                c = {c.maxRel, false, "labels differ"};
            if (!std::equal(gotSizes.begin(), gotSizes.end(), refSizes.begin()))
                c = {c.maxRel, false, "sizes differ"};
            const char* what[] = {"", " (empty group)", " (v1 path)"};
            pr.row({"merge", vn, pn, in.name + what[variant], in.n, in.d, c.maxRel, tol.rtol,
                    tol.atol, c.pass, c.note});
        }
    }
    if (!skip(kk::Kernel::ArHeads) && k >= 2) {
        const auto heads = defaultArHeads(d);
        Dev dw;
        const std::size_t hd = ArHeads::kHidden;
        kk::ArParams ap;
        kk::bindArWeights(ap, dw.put(packArHeads(*heads), p), int(d), p);
        std::vector<float> mk(std::size_t(k * d));
        for (i64 i = 0; i < k * d; ++i)
            mk[i] = in.x[(i * 7919) % (n * d)]; // merged-like rows
        kk::DeviceBuffer<float> dm, means, hidden, err;
        dm.upload(mk.data(), mk.size());
        means.resize(2 * (k - 1) * d);
        hidden.resize(2 * (k - 1) * hd);
        poison(err, 2 * (k - 1));
        ap.merged = dm.get();
        ap.k = static_cast<int>(k);
        ap.d = static_cast<int>(d);
        ap.means = means.get();
        ap.hidden = hidden.get();
        ap.err = err.get();
        kk::arHeads(ap, v, p, nullptr);
        const auto got = fetch(err, 2 * (k - 1));
        const auto ref = refAr(mk, k, d, *heads, p == kk::Prec::F16);
        pr.add("ar_heads", vn, pn, in, compare(got.data(), ref.data(), ref.size(), tol), tol);
    }
    if (!skip(kk::Kernel::Metrics)) {
        std::vector<int> lab = groups;
        for (i64 i = 0; i < n; i += 9)
            lab[i] = -1; // dropped tokens reconstruct as zero
        std::vector<float> mk(centresF.size());
        for (std::size_t i = 0; i < mk.size(); ++i)
            mk[i] = centresF[i] * 3.0f + 0.1f;
        kk::DeviceBuffer<int> dl;
        dl.upload(lab.data(), lab.size());
        kk::DeviceBuffer<float> dm, terms, mn;
        dm.upload(mk.data(), mk.size());
        poison(terms, 4 * n);
        poison(mn, k);
        kk::DeviceBuffer<float> pad;
        poison(pad, n);
        kk::MetricsParams mp{X,
                             static_cast<int>(n),
                             static_cast<int>(d),
                             static_cast<int>(k),
                             dl.get(),
                             dm.get(),
                             terms.get(),
                             mn.get(),
                             pad.get()};
        kk::metrics(mp, v, p, nullptr);
        auto got = fetch(terms, 4 * n);
        const auto gotN = fetch(mn, k), gotP = fetch(pad, n);
        got.insert(got.end(), gotN.begin(), gotN.end());
        got.insert(got.end(), gotP.begin(), gotP.end());
        std::vector<double> ref;
        for (i64 i = 0; i < n; ++i) {
            double e2 = 0, x2 = 0;
            for (i64 f = 0; f < d; ++f) {
                const double u = lab[i] >= 0 ? mk[lab[i] * d + f] : 0.0;
                e2 += (x[i * d + f] - u) * (x[i * d + f] - u);
                x2 += double(x[i * d + f]) * x[i * d + f];
            }
            ref.insert(
                ref.end(),
                {e2, x2, lab[i] >= 0 ? cosine(&x[i * d], &mk[lab[i] * d], d) : 0.0, std::sqrt(x2)});
        }
        for (i64 g = 0; g < k; ++g)
            ref.push_back(
                std::sqrt(std::inner_product(&mk[g * d], &mk[(g + 1) * d], &mk[g * d], 0.0)));
        for (i64 i = 0; i < n; ++i) { // the fidelity loss's rows: merged padded with zeros to N
            double r = 0;
            for (i64 f = 0; f < d; ++f) {
                const double q = x[i * d + f] - (i < k ? double(mk[i * d + f]) : 0.0);
                r += q * q;
            }
            ref.push_back(r);
        }
        pr.add("metrics", vn, pn, in,
               compare(got.data(), ref.data(), ref.size(), Tol{tol.atol * 10, tol.rtol}), tol);
    }
}
#endif

} // namespace

std::vector<CheckRow> runChecks(const CheckOptions& o, std::ostream& out) {
    const std::uint64_t seed =
        o.seed ? o.seed : (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    out << "qmpp check: seed " << seed << (o.quick ? " (quick)" : "") << "\n";
    std::mt19937_64 rng(seed);
    std::vector<Input> inputs;
    const std::vector<i64> sizes =
        o.quick ? std::vector<i64>{1, 37, 130} : std::vector<i64>{1, 77, 300, 1000};
    const i64 dim = o.quick ? 24 : 64;
    for (i64 n : sizes)
        inputs.push_back({"random", n, dim, syntheticTokens(n, dim, rng())});
    // a D that is no multiple of 8 (unaligned rows) and N beyond one 128-token tile
    inputs.push_back({"random, odd D", 150, 45, syntheticTokens(150, 45, rng())});
    // aligned rows whose D ends in a partial pipeline stage (64 and 128 elements a stage), over
    // two column panels of 128 x 256 tiles
    inputs.push_back({"random, D = 200", 300, 200, syntheticTokens(300, 200, rng())});
    if (!o.photoTokens.empty()) {
        const NdArray a = readNpy(o.photoTokens);
        if (a.ndim() != 2) throw std::runtime_error(o.photoTokens + ": expected [N, D] tokens");
        Input ph{"photo", a.shape[0], a.shape[1], a.toFloat()};
        if (o.quick) { // the first 128 tokens keep sanitizer runs short
            ph.n = std::min<i64>(ph.n, 128);
            ph.x.resize(static_cast<std::size_t>(ph.n * ph.d));
        }
        inputs.push_back(std::move(ph));
    }
    Printer pr(out);
    std::string why;
    const bool gpu = gpuAvailable(&why);
    if (o.backend == "all" || o.backend == "cpu" || !gpu) {
        if (!gpu) out << "no GPU: " << why << "; checking the CPU backend's steps\n";
        for (const auto& in : inputs)
            checkCpu(in, rng, pr);
    }
#ifdef QMPP_HAVE_CUDA
    if (gpu && o.backend != "cpu") {
        // device uniforms equal the host generator's, bit for bit
        for (i64 n : {i64(1), i64(1000), i64(65537)}) {
            const std::uint64_t s = rng();
            kk::DeviceBuffer<float> du(n);
            kk::philoxUniforms(du.get(), n, s, nullptr);
            auto dev = fetch(du, n);
            for (auto& e : dev)
                e = std::clamp(e, 1e-7f, 1.0f - 1e-7f);
            const auto host = philoxUniforms(n, s);
            const bool same = dev == host;
            pr.row({"uniforms", "curand", "fp32", "philox", n, 0, same ? 0.0 : 1.0, 0, 0, same,
                    same ? "device == host, bit for bit" : "device and host differ"});
        }
        // The whole pipeline on the GPU against the CPU backend: FP32, same seed, a real photo.
        for (const auto& in : inputs) {
            if (in.name != "photo") continue;
            TokenSet t;
            t.n = in.n;
            t.d = in.d;
            t.x = in.x;
            MergeParams p;
            p.backend = BackendKind::Cpu;
            const MergeResult cpu = runMerge(t, p);
            for (const char* which : {"cuda-basic", "cuda"}) {
                if (o.backend != "all" && o.backend != which) continue;
                parse(which, p.backend);
                const MergeResult gpu = runMerge(t, p);
                i64 same = 0;
                double worstGap = 0, salDiff = 0;
                for (i64 i = 0; i < t.n; ++i) {
                    salDiff =
                        std::max(salDiff, double(std::abs(cpu.saliency[i] - gpu.saliency[i])));
                    if (cpu.labels[i] == gpu.labels[i]) {
                        ++same;
                        continue;
                    }
                    // a disagreement must be a near-tie between the two groups' directions
                    const double a = cosine(&t.x[i * t.d], &gpu.merged[gpu.labels[i] * t.d], t.d);
                    const double b = cosine(&t.x[i * t.d], &gpu.merged[cpu.labels[i] * t.d], t.d);
                    worstGap = std::max(worstGap, std::abs(a - b));
                }
                const double agree = double(same) / double(t.n);
                const bool ok = agree >= 0.995 && worstGap <= 1e-5;
                std::ostringstream note;
                note << std::fixed << std::setprecision(2) << 100 * agree
                     << "% labels agree with the CPU, " << std::scientific << std::setprecision(1)
                     << "largest disagreement gap " << worstGap << ", saliency max |diff| "
                     << salDiff;
                pr.row({"pipeline", which, "fp32", in.name, t.n, t.d, 1 - agree, 0.005, 0, ok,
                        note.str()});
            }
            // Repeated runs of one backend replay the clustering and AR stages as CUDA graphs
            // (captured on the second run with the same shapes): replays must equal the first,
            // direct run bit for bit, also after the seed and temperature change.
            if (o.backend == "all" || o.backend == "cuda")
                for (const Precision prec : {Precision::FP32, Precision::FP16}) {
                    const i64 k = std::max<i64>(1, t.n / 5);
                    MergeParams q;
                    q.precision = prec;
                    auto backend = makeCudaBackend(true, prec);
                    const MergeResult direct = backend->run(t, q, k);
                    const MergeResult captured = backend->run(t, q, k);
                    const MergeResult replay = backend->run(t, q, k);
                    MergeParams q2 = q;
                    q2.seed = q.seed + 1;
                    q2.temperature = 0.5;
                    const MergeResult changed = backend->run(t, q2, k);
                    const MergeResult fresh = makeCudaBackend(true, prec)->run(t, q2, k);
                    auto same = [](const MergeResult& a, const MergeResult& b) {
                        return a.labels == b.labels && a.merged == b.merged &&
                               a.saliency == b.saliency && a.pi == b.pi &&
                               a.layerEntropy == b.layerEntropy && a.foreground == b.foreground &&
                               a.losses.total == b.losses.total && a.groupSizes == b.groupSizes &&
                               a.refineRounds == b.refineRounds;
                    };
                    const bool ok = same(direct, captured) && same(direct, replay) &&
                                    same(changed, fresh) && !same(direct, changed);
                    const std::string note = ok ? "graph replays equal direct runs, bit for bit"
                                                : "a graph replay differs from the direct run";
                    pr.row({"pipeline_graph", "cuda", toString(prec), in.name, t.n, t.d,
                            ok ? 0.0 : 1.0, 0, 0, ok, note});
                    // hidden states kept on the device for one revision, uploaded again for another
                    TokenSet h = t;
                    h.hiddenLayers = 2;
                    h.hidden.resize(std::size_t(2 * t.n * t.d));
                    for (std::size_t i = 0; i < h.hidden.size(); ++i)
                        h.hidden[i] = t.x[i % t.x.size()] * (i < t.x.size() ? 1.0f : -0.5f);
                    h.revision = 7;
                    TokenSet h2 = h;
                    for (auto& e : h2.hidden)
                        e *= 1.5f;
                    for (auto& e : h2.x)
                        e *= 1.5f; // stale device tokens would leave merged unchanged
                    h2.revision = 8;
                    const MergeResult up = backend->run(h, q, k), kept = backend->run(h, q, k);
                    const MergeResult other = backend->run(h2, q, k),
                                      otherFresh = makeCudaBackend(true, prec)->run(h2, q, k);
                    auto staged = [](const MergeResult& r) {
                        return std::any_of(
                            r.timings.begin(), r.timings.end(),
                            [](const StageTiming& s) { return s.stage == "upload_hidden"; });
                    };
                    const bool hok = same(up, kept) && same(other, otherFresh) && staged(up) &&
                                     !staged(kept) && staged(other) &&
                                     up.layerEntropy != other.layerEntropy &&
                                     up.merged != other.merged;
                    pr.row({"pipeline_resident", "cuda", toString(prec), in.name + " + 2 hidden",
                            t.n, t.d, hok ? 0.0 : 1.0, 0, 0, hok,
                            hok ? "kept tokens and hidden states give the uploaded result; a new "
                                  "revision is uploaded"
                                : "resident tokens or hidden states change the result"});
                }
        }
        std::vector<kk::Version> versions;
        if (o.backend != "cuda") versions.push_back(kk::Version::Basic);
        if (o.backend != "cuda-basic") versions.push_back(kk::Version::Optimized);
        for (auto v : versions)
            for (auto p : {kk::Prec::F32, kk::Prec::F16}) {
                for (const auto& in : inputs)
                    checkKernels(in, v, p, rng, pr, nullptr);
                if (!o.quick) { // N = 65,536: a random subset of rows against the reference
                    const Input big{"random", 65536, 64, syntheticTokens(65536, 64, rng())};
                    std::vector<i64> rows(256);
                    for (auto& r : rows)
                        r = static_cast<i64>(rng() % 65536);
                    checkKernels(big, v, p, rng, pr, &rows);
                }
            }
    }
#endif
    int passed = 0, failed = 0;
    for (const auto& r : pr.rows())
        (r.pass ? passed : failed)++;
    out << passed << " passed, " << failed << " failed\n";
    return pr.rows();
}

} // namespace qmpp
