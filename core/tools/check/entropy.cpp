// Attention entropy (from Q = K = x, and from supplied maps) and saliency: the float64
// references and their checks.
#include "harness.h"

#include <numeric>

namespace qmpp::check {

namespace {

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

std::vector<double> refEntropyMaps(const std::vector<float>& a, i64 layers, i64 heads, i64 n) {
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

} // namespace

void checkEntropyCpu(const Input& in, Printer& pr) {
    const i64 n = in.n, d = in.d;
    const Tol tol = kF32;
    std::vector<i64> rows(static_cast<std::size_t>(n));
    std::iota(rows.begin(), rows.end(), i64(0));
    const int layers = 3;
    const std::vector<double> betas = multiScaleBetas(layers, d);
    const auto ref = refEntropy(in.x, n, d, betas, rows);
    const auto got = entropyMultiScale(in.x.data(), n, d, layers);
    const Tol etol = entropyTol(tol, n);
    pr.add("entropy_gram", "cpu", "fp32", in, compare(got.data(), ref.data(), ref.size(), etol),
           etol);

    std::vector<float> hf(got.begin(), got.end());
    const auto sref = refSaliency(hf, layers, n);
    const auto s = saliencyFromEntropy(got, layers, n);
    pr.add("saliency", "cpu", "fp32", in, compare(s.data(), sref.data(), s.size(), tol), tol);
}

#ifdef QMPP_HAVE_CUDA
void KernelCase::checkEntropyGramKernel(const std::vector<i64>* rows_) {
    // entropy_gram: multi-scale (3 scales) on the tokens; two hidden-state sources (the tokens
    // and the tokens in reverse order at half scale); the optimized version in both schedules.
    if (!skip(kk::Kernel::EntropyGram)) {
        std::vector<i64> rows;
        if (rows_)
            rows = *rows_;
        else {
            rows.resize(static_cast<std::size_t>(n));
            std::iota(rows.begin(), rows.end(), i64(0));
        }
        using Tiles = kk::EntropyGramParams::Tiles;
        auto gram = [&](const void* src, int sources, const std::vector<double>& betas, bool panels,
                        Tiles tiles = Tiles::Auto) {
            const std::size_t outs = std::size_t(sources) * betas.size() * std::size_t(n);
            kk::DeviceBuffer<float> h;
            poison(h, outs);
            const std::vector<float> beta(betas.begin(), betas.end());
            kk::EntropyGramParams gp = kk::entropyGramParams(
                src, sources, int(n), int(d), beta.data(), int(beta.size()), h.get());
            gp.rowPanels = panels;
            gp.tiles = tiles;
            gp.workBytes = kk::entropyGramWorkBytes(gp, v, p);
            kk::DeviceBuffer<std::uint8_t> work(std::max<std::size_t>(gp.workBytes, 1));
            work.fillBytes(0xff); // unwritten partials would show as NaN
            gp.work = work.get();
            kk::entropyGram(gp, v, p, nullptr);
            return fetch(h, outs);
        };
        const Tol etol = entropyTol(tol, n);
        const int scales = rows_ ? 1 : 3;
        std::vector<double> betas = multiScaleBetas(scales, d);
        for (auto& b : betas)
            b = float(b); // the device's betas, so the reference sees what the kernel sees
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
        if (rows_) return; // the large case checks this kernel alone
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
}

void KernelCase::checkEntropyMapsKernel() {
    // entropy_maps: [2 layers, 2 heads, N, N] positive maps with some exact zeros
    if (!skip(kk::Kernel::EntropyMaps) && n <= 600) {
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        std::vector<float> a(static_cast<std::size_t>(4 * n * n));
        for (std::size_t i = 0; i < a.size(); ++i)
            a[i] = (i % 11 == 3) ? 0.0f : u(rng) + 0.01f;
        const auto ah = p == kk::Prec::F16 ? roundHalf(a) : a;
        Dev da;
        kk::DeviceBuffer<float> h;
        poison(h, 2 * n);
        kk::entropyMaps(kk::entropyMapsParams(da.put(a, p), 2, 2, int(n), h.get()), v, p, nullptr);
        const auto got = fetch(h, 2 * n);
        const auto ref = refEntropyMaps(ah, 2, 2, n);
        const Tol etol = entropyTol(tol, n);
        pr.add("entropy_maps", vn, pn, in, compare(got.data(), ref.data(), ref.size(), etol), etol);
    }
}

void KernelCase::checkSaliencyKernel() {
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
        kk::SaliencyParams sp =
            kk::saliencyParams(dh.get(), 3, static_cast<int>(n), mm.get(), s.get());
        kk::saliency(sp, v, nullptr);
        const auto got = fetch(s, n);
        const auto ref = refSaliency(h, 3, n);
        pr.add("saliency", vn, pn, in, compare(got.data(), ref.data(), ref.size(), tol), tol);
    }
}
#endif

} // namespace qmpp::check
