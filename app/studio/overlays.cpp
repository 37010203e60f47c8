#include "overlays.h"

#include "colormap.h"

#include <QPainter>
#include <algorithm>
#include <cmath>

namespace studio {

namespace {

QImage tokenMap(const Grid& g, const std::vector<float>& v, double scale) {
    QImage img(g.cols, g.rows, QImage::Format_RGB32);
    for (int i = 0; i < g.rows * g.cols && i < int(v.size()); ++i)
        img.setPixel(i % g.cols, i / g.cols, viridisAt(v[i] * scale));
    return img;
}

} // namespace

Grid gridOf(const StudioInput& input) {
    Grid g;
    const auto& t = input.tokens();
    if (t.gridRows > 0) {
        g.rows = t.gridRows;
        g.cols = t.gridCols;
        g.cell = input.loaded->image ? input.loaded->image->patch : 16;
    } else { // embeddings: a near-square grid, 16-pixel cells
        g.cols = std::max(1, int(std::ceil(std::sqrt(double(t.n)))));
        g.rows = int((t.n + g.cols - 1) / g.cols);
        g.cell = 16;
    }
    return g;
}

QImage baseImage(const StudioInput& input) {
    if (input.isImage()) {
        const auto& im = *input.loaded->image;
        return QImage(im.rgb.data(), im.width, im.height, im.width * 3, QImage::Format_RGB888)
            .copy();
    }
    const Grid g = gridOf(input);
    QImage img(g.cols * g.cell, g.rows * g.cell, QImage::Format_RGB32);
    img.fill(QColor(60, 60, 60));
    QPainter p(&img);
    p.setPen(QColor(90, 90, 90));
    for (int i = 0; i < input.tokens().n; ++i)
        p.drawRect((i % g.cols) * g.cell, (i / g.cols) * g.cell, g.cell - 1, g.cell - 1);
    return img;
}

void makeDisplayImages(const StudioInput& input, RunOutput& out) {
    const auto& r = out.result;
    const auto& t = input.tokens();
    const Grid g = gridOf(input);
    out.saliency = tokenMap(g, r.saliency, 1.0);
    const float piMax = r.pi.empty() ? 1.0f : *std::max_element(r.pi.begin(), r.pi.end());
    out.mask = tokenMap(g, r.pi, piMax > 0 ? 1.0 / piMax : 1.0);

    const QImage base = baseImage(input).convertToFormat(QImage::Format_RGB32);
    const int w = base.width(), h = base.height();
    auto tokenAt = [&](int x, int y) -> long long {
        const long long i = (long long)(y / g.cell) * g.cols + x / g.cell;
        return i < t.n ? i : -1;
    };
    auto labelAt = [&](int x, int y) -> long long {
        const long long i = tokenAt(x, y);
        return i < 0 ? -2 : r.labels[i];
    };
    // group mean colours of the base picture
    std::vector<double> sum(static_cast<std::size_t>(3 * r.k), 0.0),
        cnt(static_cast<std::size_t>(r.k), 0.0);
    for (int y = 0; y < h; ++y) {
        const QRgb* row = reinterpret_cast<const QRgb*>(base.constScanLine(y));
        for (int x = 0; x < w; ++x) {
            const long long l = labelAt(x, y);
            if (l < 0) continue;
            sum[3 * l] += qRed(row[x]);
            sum[3 * l + 1] += qGreen(row[x]);
            sum[3 * l + 2] += qBlue(row[x]);
            cnt[l] += 1;
        }
    }
    out.clusters = QImage(w, h, QImage::Format_RGB32);
    out.groups = QImage(w, h, QImage::Format_RGB32);
    out.merged = QImage(w, h, QImage::Format_RGB32);
    const bool rawPixels = input.isImage() && !input.loaded->image->projected;
    const int P = g.cell, T = input.tubelet, tau = input.tau;
    for (int y = 0; y < h; ++y) {
        QRgb* c = reinterpret_cast<QRgb*>(out.clusters.scanLine(y));
        QRgb* gr = reinterpret_cast<QRgb*>(out.groups.scanLine(y));
        QRgb* m = reinterpret_cast<QRgb*>(out.merged.scanLine(y));
        for (int x = 0; x < w; ++x) {
            const long long l = labelAt(x, y);
            if (l < 0) { // dropped (pruning) or outside the tokens: dark
                c[x] = gr[x] = m[x] = qRgb(20, 20, 20);
                continue;
            }
            const double n = std::max(1.0, cnt[l]);
            const QRgb mean =
                qRgb(int(sum[3 * l] / n), int(sum[3 * l + 1] / n), int(sum[3 * l + 2] / n));
            const bool edge =
                (x > 0 && labelAt(x - 1, y) != l) || (y > 0 && labelAt(x, y - 1) != l) ||
                (x + 1 < w && labelAt(x + 1, y) != l) || (y + 1 < h && labelAt(x, y + 1) != l);
            const QRgb col = groupColour(l).rgb();
            c[x] = edge ? col : mean;
            gr[x] = col;
            if (rawPixels) { // decode the merged token back to pixels
                const int py = y % P, px = x % P;
                int rgb[3];
                for (int ch = 0; ch < 3; ++ch) {
                    // channel-major (3, T, P, P); the frame's own slice of a tubelet token
                    const float v = r.merged[l * t.d + ((ch * T + tau) * P + py) * P + px] *
                                        qmpp::kImageNetStd[ch] +
                                    qmpp::kImageNetMean[ch];
                    rgb[ch] = std::clamp(int(std::lround(255.0 * v)), 0, 255);
                }
                m[x] = qRgb(rgb[0], rgb[1], rgb[2]);
            } else {
                m[x] = mean;
            }
        }
    }
}

} // namespace studio
