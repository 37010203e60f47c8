#include "modelview.h"

#include "colormap.h"

#include <QObject>
#include <QPainter>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace studio {

QImage modelInputImage(const qmpp::VitConfig& c, const float* pixels) {
    const int s = int(c.imageSize);
    QImage img(s, s, QImage::Format_RGB32);
    const qmpp::i64 plane = c.imageSize * c.imageSize;
    auto byte = [&](qmpp::i64 ch, qmpp::i64 i) {
        const double v = pixels[ch * plane + i] * c.std[std::size_t(ch)] + c.mean[std::size_t(ch)];
        return int(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
    };
    for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x) {
            const qmpp::i64 i = qmpp::i64(y) * s + x;
            const int r = byte(0, i);
            const int g = c.channels >= 3 ? byte(1, i) : r, b = c.channels >= 3 ? byte(2, i) : r;
            img.setPixel(x, y, qRgb(r, g, b));
        }
    return img;
}

namespace {

// The patch of an (upscaled) pixel.
int patchAt(int x, int y, int cell, int grid) {
    return std::min(y / cell, grid - 1) * grid + std::min(x / cell, grid - 1);
}

} // namespace

QImage sourcesImage(const QImage& input, const std::vector<std::int32_t>& owner, int grid,
                    int scale) {
    const QImage big = input.scaled(input.width() * scale, input.height() * scale,
                                    Qt::IgnoreAspectRatio, Qt::FastTransformation);
    const int w = big.width(), h = big.height(), cell = std::max(1, w / grid);
    // each token's mean colour over its patches' pixels
    const int tokens = owner.empty() ? 0 : *std::max_element(owner.begin(), owner.end()) + 1;
    std::vector<double> sum(std::size_t(std::max(tokens, 1)) * 3, 0.0);
    std::vector<double> n(std::size_t(std::max(tokens, 1)), 0.0);
    std::vector<int> tokenOf(std::size_t(w) * std::size_t(h), -1);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int t = owner[std::size_t(patchAt(x, y, cell, grid))];
            tokenOf[std::size_t(y) * w + x] = t;
            if (t < 0) continue;
            const QRgb p = big.pixel(x, y);
            sum[std::size_t(t) * 3] += qRed(p);
            sum[std::size_t(t) * 3 + 1] += qGreen(p);
            sum[std::size_t(t) * 3 + 2] += qBlue(p);
            n[std::size_t(t)] += 1;
        }
    QImage out(w, h, QImage::Format_RGB32);
    auto at = [&](int x, int y) {
        return x < 0 || y < 0 || x >= w || y >= h ? -2 : tokenOf[std::size_t(y) * w + x];
    };
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int t = at(x, y);
            if (t < 0) {
                out.setPixel(x, y, qRgb(0, 0, 0));
                continue;
            }
            // binary_erosion with a cross: an edge pixel has a 4-neighbour outside its token
            // (or the image border)
            const bool edge =
                at(x - 1, y) != t || at(x + 1, y) != t || at(x, y - 1) != t || at(x, y + 1) != t;
            if (edge) {
                out.setPixel(x, y, groupColour(t).rgb());
            } else {
                const double k = n[std::size_t(t)];
                out.setPixel(x, y,
                             qRgb(int(sum[std::size_t(t) * 3] / k),
                                  int(sum[std::size_t(t) * 3 + 1] / k),
                                  int(sum[std::size_t(t) * 3 + 2] / k)));
            }
        }
    return out;
}

QImage heatImage(const QImage& input, const std::vector<double>& perPatch, int grid, int scale,
                 double alpha) {
    const QImage big = input
                           .scaled(input.width() * scale, input.height() * scale,
                                   Qt::IgnoreAspectRatio, Qt::FastTransformation)
                           .convertToFormat(QImage::Format_RGB32);
    double lo = 1e300, hi = -1e300;
    for (double v : perPatch)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    QImage out = big;
    const int w = big.width(), h = big.height(), cell = std::max(1, w / grid);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const double v = perPatch[std::size_t(patchAt(x, y, cell, grid))];
            const QRgb p = big.pixel(x, y);
            if (!std::isfinite(v)) {
                out.setPixel(x, y, qRgb(qRed(p) / 5, qGreen(p) / 5, qBlue(p) / 5));
                continue;
            }
            const QRgb c = viridisAt(hi > lo ? (v - lo) / (hi - lo) : 0.5);
            auto mix = [&](int a, int b) { return int(std::lround(a * (1 - alpha) + b * alpha)); };
            out.setPixel(
                x, y,
                qRgb(mix(qRed(p), qRed(c)), mix(qGreen(p), qGreen(c)), mix(qBlue(p), qBlue(c))));
        }
    return out;
}

std::vector<std::pair<int, double>> topProbabilities(const std::vector<float>& logits, int k) {
    std::vector<double> p(logits.begin(), logits.end());
    if (p.empty()) return {};
    const double mx = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (double& v : p)
        sum += (v = std::exp(v - mx));
    std::vector<int> idx(p.size());
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min<int>(k, int(p.size()));
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    std::vector<std::pair<int, double>> out;
    for (int i = 0; i < k; ++i)
        out.emplace_back(idx[i], p[idx[i]] / sum);
    return out;
}

QStringList modelOverlayNames() {
    return {QObject::tr("Input"),
            QObject::tr("Sources"),
            QObject::tr("Saliency"),
            QObject::tr("Class-token attention"),
            QObject::tr("Attention rollout"),
            QObject::tr("Attention of the clicked token")};
}

std::vector<double> overlayValues(ModelOverlay o, const qmpp::ForwardTrace& tr,
                                  const qmpp::Rollout& ro, const qmpp::VitConfig& c, int block,
                                  int patch, int head) {
    if (block < 0 || block >= int(tr.blocks.size())) return {};
    const qmpp::BlockTrace& b = tr.blocks[std::size_t(block)];
    switch (o) {
    case ModelOverlay::Input:
    case ModelOverlay::Sources:
        return {};
    case ModelOverlay::Saliency:
        return qmpp::toPatches(b, qmpp::blockSaliency(b));
    case ModelOverlay::ClassAttention:
        return qmpp::toPatches(b, qmpp::tokenAttention(b, c.heads, 0));
    case ModelOverlay::Rollout:
        return std::size_t(block) < ro.patches.size() ? ro.patches[std::size_t(block)]
                                                      : std::vector<double>{};
    case ModelOverlay::HeadAttention: {
        const int row =
            patch >= 0 && std::size_t(patch) < b.owner.size() ? b.owner[std::size_t(patch)] : 0;
        if (row < 0) return {};
        return qmpp::toPatches(b, qmpp::tokenAttention(b, c.heads, row, head));
    }
    }
    return {};
}

} // namespace studio
