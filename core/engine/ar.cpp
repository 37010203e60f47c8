// Step 6: the seed's bidirectional AR-alignment loss and norm-based fidelity loss.
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

namespace qmpp {

namespace {

// out [M, D] = f(v) = W2 relu(W1 v + b1) + b2 for the M rows of v [M, D], as two products.
void applyHead(const float* w1, const float* b1, const float* w2, const float* b2, i64 d,
               const std::vector<float>& v, i64 m, std::vector<float>& out) {
    const i64 hd = ArHeads::kHidden;
    std::vector<float> hidden(static_cast<std::size_t>(m * hd));
    out.assign(static_cast<std::size_t>(m * d), 0.0f);
    const i64 blocks = (m + kRowBlock - 1) / kRowBlock;
    const PackedRows w1p = packRows(w1, hd, d), w2p = packRows(w2, d, hd);
#pragma omp parallel for schedule(static)
    for (i64 b = 0; b < blocks; ++b) {
        const i64 i0 = b * kRowBlock, rows = std::min(kRowBlock, m - i0);
        float* h = hidden.data() + i0 * hd;
        gemmPacked(v.data() + i0 * d, rows, w1p, h);
        for (i64 r = 0; r < rows; ++r)
            for (i64 j = 0; j < hd; ++j)
                h[r * hd + j] = std::max(0.0f, h[r * hd + j] + b1[j]);
        float* o = out.data() + i0 * d;
        gemmPacked(h, rows, w2p, o);
        for (i64 r = 0; r < rows; ++r)
            for (i64 j = 0; j < d; ++j)
                o[r * d + j] += b2[j];
    }
}

} // namespace

std::shared_ptr<const ArHeads> defaultArHeads(i64 d) {
    static std::mutex mu;
    static std::map<i64, std::shared_ptr<const ArHeads>> cache;
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(d); it != cache.end()) return it->second;
    auto h = std::make_shared<ArHeads>();
    h->d = d;
    h->source = "default init (PyTorch nn.Linear bounds, Philox seed 0)";
    const i64 hd = ArHeads::kHidden;
    // nn.Linear's default init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    const i64 total = 2 * (hd * d + hd + d * hd + d);
    const std::vector<float> u = philoxUniforms(total, 0);
    std::size_t at = 0;
    auto fill = [&](std::vector<float>& v, i64 count, i64 fanIn) {
        const double bound = 1.0 / std::sqrt(double(fanIn));
        v.resize(static_cast<std::size_t>(count));
        for (auto& e : v)
            e = static_cast<float>((2.0 * u[at++] - 1.0) * bound);
    };
    fill(h->fw1, hd * d, d);
    fill(h->fb1, hd, d);
    fill(h->fw2, d * hd, hd);
    fill(h->fb2, d, hd);
    fill(h->bw1, hd * d, d);
    fill(h->bb1, hd, d);
    fill(h->bw2, d * hd, hd);
    fill(h->bb2, d, hd);
    cache[d] = h;
    return h;
}

std::vector<float> packArHeads(const ArHeads& h) {
    std::vector<float> all;
    for (const auto* v : {&h.fw1, &h.fb1, &h.fw2, &h.fb2, &h.bw1, &h.bb1, &h.bw2, &h.bb2})
        all.insert(all.end(), v->begin(), v->end());
    return all;
}

void arLoss(const std::vector<float>& merged, i64 k, i64 d, const ArHeads& heads, Losses& losses,
            std::vector<double>& errFwd, std::vector<double>& errBwd) {
    errFwd.assign(static_cast<std::size_t>(std::max<i64>(k - 1, 0)), 0.0);
    errBwd = errFwd;
    losses.arForward = losses.arBackward = losses.ar = 0;
    if (k <= 1) return;
    // Prefix means P_t = mean(x_0..x_t) and suffix means Q_t = mean(x_t..x_{K-1}) by scans.
    std::vector<double> prefix(static_cast<std::size_t>(k * d)), suffix(prefix.size());
    std::vector<double> run(static_cast<std::size_t>(d), 0.0);
    for (i64 t = 0; t < k; ++t)
        for (i64 j = 0; j < d; ++j) {
            run[j] += merged[t * d + j];
            prefix[t * d + j] = run[j] / double(t + 1);
        }
    std::fill(run.begin(), run.end(), 0.0);
    for (i64 t = k - 1; t >= 0; --t)
        for (i64 j = 0; j < d; ++j) {
            run[j] += merged[t * d + j];
            suffix[t * d + j] = run[j] / double(k - t);
        }
    // Heads applied to all positions at once: forward f_fwd(P_t) predicts x_{t+1} (t < K-1),
    // backward f_bwd(Q_{t+1}) predicts x_t.
    const i64 m = k - 1;
    std::vector<float> pin(prefix.begin(), prefix.begin() + m * d);
    std::vector<float> sin(suffix.begin() + d, suffix.end());
    std::vector<float> fwd, bwd;
    applyHead(heads.fw1.data(), heads.fb1.data(), heads.fw2.data(), heads.fb2.data(), d, pin, m,
              fwd);
    applyHead(heads.bw1.data(), heads.bb1.data(), heads.bw2.data(), heads.bb2.data(), d, sin, m,
              bwd);
    for (i64 t = 0; t < m; ++t) {
        double ef = 0, eb = 0;
        for (i64 j = 0; j < d; ++j) {
            const double a = double(fwd[t * d + j]) - merged[(t + 1) * d + j];
            const double b = double(bwd[t * d + j]) - merged[t * d + j];
            ef += a * a;
            eb += b * b;
        }
        errFwd[t] = ef / double(d);
        errBwd[t] = eb / double(d);
    }
    for (i64 t = 0; t < k - 1; ++t) {
        losses.arForward += errFwd[t];
        losses.arBackward += errBwd[t];
    }
    losses.arForward /= double(k - 1);
    losses.arBackward /= double(k - 1);
    losses.ar = losses.arForward + losses.arBackward;
}

double normMassTopK(const float* x, i64 n, i64 d, i64 k) {
    std::vector<double> nrm(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += double(x[i * d + j]) * x[i * d + j];
        nrm[i] = std::sqrt(s);
    }
    return normMassTopKFromNorms(std::move(nrm), k);
}

double normMassTopKFromNorms(std::vector<double> nrm, i64 k) {
    const i64 n = static_cast<i64>(nrm.size());
    double total = 0;
    for (double v : nrm)
        total += v;
    const i64 top = std::min(k, n / 2);
    if (total <= 0 || top <= 0) return 0.0;
    // the top elements by selection (linear time), summed in the order it leaves them
    std::nth_element(nrm.begin(), nrm.begin() + (top - 1), nrm.end(), std::greater<double>());
    double s = 0;
    for (i64 i = 0; i < top; ++i)
        s += nrm[i];
    return s / total;
}

double fidelityLossFromRows(const double* rowErr, i64 n, i64 d, double fro2, double gammaActual) {
    const double threshold = (1.0 - gammaActual) * (1.0 - gammaActual) * fro2;
    double loss = 0;
    for (i64 i = 0; i < n; ++i)
        loss += std::max(0.0, rowErr[i] / double(d) - threshold);
    return loss / double(n);
}

double fidelityLoss(const float* x, i64 n, i64 d, const std::vector<float>& merged, i64 k,
                    double gammaActual) {
    std::vector<double> rows(static_cast<std::size_t>(n)), sq(rows.size());
#pragma omp parallel for schedule(static)
    for (i64 i = 0; i < n; ++i) {
        double r = 0, s = 0; // merged padded with zero rows to N rows
        for (i64 j = 0; j < d; ++j) {
            const double diff = double(x[i * d + j]) - (i < k ? merged[i * d + j] : 0.0f);
            r += diff * diff;
            s += double(x[i * d + j]) * x[i * d + j];
        }
        rows[i] = r;
        sq[i] = s;
    }
    double fro2 = 0; // row sums added in row order: independent of the thread count
    for (double s : sq)
        fro2 += s;
    return fidelityLossFromRows(rows.data(), n, d, fro2, gammaActual);
}

} // namespace qmpp
