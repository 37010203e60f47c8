// The overlay pictures (qmpp/overlay.h): token cells coloured by value or by group.
#include "qmpp/overlay.h"

#include "qmpp/inputs.h"
#include "qmpp/views.h"

#include <algorithm>
#include <cmath>

namespace qmpp {

namespace {

std::uint8_t byte(double v) { // [0, 1] -> 0..255, rounded
    return static_cast<std::uint8_t>(
        std::lround(255.0 * std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 1.0)));
}

constexpr std::uint32_t kDark = 0x141414; // dropped tokens and cells past the last token
constexpr std::uint32_t kBorder = 0x282828;

} // namespace

RgbImage::RgbImage(int w, int h, std::uint32_t fill)
    : width(w), height(h), rgb(std::size_t(w) * std::size_t(h) * 3) {
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            set(x, y, fill);
}

void RgbImage::set(int x, int y, std::uint32_t c) {
    std::uint8_t* p = at(x, y);
    p[0] = std::uint8_t(c >> 16);
    p[1] = std::uint8_t(c >> 8);
    p[2] = std::uint8_t(c);
}

TokenGrid tokenGrid(const TokenSet& t, int patch) {
    TokenGrid g;
    if (t.gridRows > 0) {
        g.rows = t.gridRows;
        g.cols = t.gridCols;
        g.cell = std::max(1, patch);
    } else {
        g.cols = std::max(1, int(std::ceil(std::sqrt(double(t.n)))));
        g.rows = int((t.n + g.cols - 1) / g.cols);
        g.cell = 16;
    }
    return g;
}

std::uint32_t viridisRgb(double v) {
    static const double stops[9][3] = {
        {0.267, 0.005, 0.329}, {0.278, 0.175, 0.483}, {0.231, 0.322, 0.545},
        {0.173, 0.448, 0.557}, {0.128, 0.567, 0.551}, {0.153, 0.680, 0.504},
        {0.369, 0.789, 0.383}, {0.678, 0.864, 0.190}, {0.993, 0.906, 0.144}};
    v = std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 1.0) * 8;
    const int i = std::min(7, int(v));
    const double f = v - i;
    std::uint32_t c = 0;
    for (int ch = 0; ch < 3; ++ch)
        c = (c << 8) | byte(stops[i][ch] + f * (stops[i + 1][ch] - stops[i][ch]));
    return c;
}

RgbImage baseImage(const ImageInput& img) {
    RgbImage out;
    out.width = img.width;
    out.height = img.height;
    out.rgb = img.rgb;
    return out;
}

RgbImage gridImage(const TokenGrid& g, i64 n) {
    RgbImage img(g.cols * g.cell, g.rows * g.cell, 0x3c3c3c);
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            const bool edge = x % g.cell == g.cell - 1 || y % g.cell == g.cell - 1 ||
                              x % g.cell == 0 || y % g.cell == 0;
            if (g.tokenAt(x, y) >= n)
                img.set(x, y, kDark);
            else if (edge)
                img.set(x, y, 0x5a5a5a);
        }
    return img;
}

RgbImage tokenHeatmap(const TokenGrid& g, i64 n, const float* values, double scale) {
    RgbImage img(g.cols, g.rows, 0);
    for (int y = 0; y < g.rows; ++y)
        for (int x = 0; x < g.cols; ++x) {
            const i64 i = g.offset + i64(y) * g.cols + x;
            if (i < n) img.set(x, y, viridisRgb(values[i] * scale));
        }
    return img;
}

RgbImage blendHeatmap(const RgbImage& base, const TokenGrid& g, const RgbImage& heat) {
    RgbImage out(base.width, base.height);
    for (int y = 0; y < base.height; ++y)
        for (int x = 0; x < base.width; ++x) {
            const int hx = std::min(heat.width - 1, x / g.cell);
            const int hy = std::min(heat.height - 1, y / g.cell);
            const std::uint8_t* b = base.at(x, y);
            const std::uint8_t* h = heat.at(hx, hy);
            std::uint8_t* o = out.at(x, y);
            for (int ch = 0; ch < 3; ++ch)
                o[ch] = static_cast<std::uint8_t>(std::lround(0.45 * b[ch] + 0.55 * h[ch]));
        }
    return out;
}

GroupPictures renderGroups(const RgbImage& base, const TokenGrid& g, const MergeResult& r,
                           const PixelTokens& px) {
    const int w = base.width, h = base.height;
    const i64 n = i64(r.labels.size());
    // -2: outside the tokens; -1: dropped; else the group
    std::vector<i64> label(std::size_t(w) * std::size_t(h));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const i64 i = g.tokenAt(x, y);
            label[std::size_t(y) * w + x] = i < n ? r.labels[std::size_t(i)] : -2;
        }
    auto at = [&](int x, int y) { return label[std::size_t(y) * w + x]; };

    std::vector<double> sum(std::size_t(std::max<i64>(r.k, 0)) * 3, 0.0), cnt(sum.size() / 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const i64 l = at(x, y);
            if (l < 0 || l >= r.k) continue;
            const std::uint8_t* p = base.at(x, y);
            for (int ch = 0; ch < 3; ++ch)
                sum[3 * l + ch] += p[ch];
            cnt[l] += 1;
        }
    auto meanOf = [&](i64 l) {
        const double c = std::max(1.0, cnt[l]);
        std::uint32_t rgb = 0;
        for (int ch = 0; ch < 3; ++ch)
            rgb = (rgb << 8) | std::uint32_t(std::lround(sum[3 * l + ch] / c));
        return rgb;
    };

    GroupPictures out{RgbImage(w, h), RgbImage(w, h), RgbImage(w, h)};
    const int P = px.patch, T = std::max(1, px.tubelet);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const i64 l = at(x, y);
            if (l < 0 || l >= r.k) {
                out.clusters.set(x, y, kDark);
                out.groups.set(x, y, kDark);
                out.merged.set(x, y, kDark);
                continue;
            }
            // a pixel is on its group's edge when a 4-neighbour belongs to another group
            const bool edge = (x > 0 && at(x - 1, y) != l) || (y > 0 && at(x, y - 1) != l) ||
                              (x + 1 < w && at(x + 1, y) != l) || (y + 1 < h && at(x, y + 1) != l);
            const std::uint32_t colour = groupRgb(l), mean = meanOf(l);
            out.clusters.set(x, y, edge ? colour : mean);
            out.groups.set(x, y, colour);
            if (!px.raw) { // the group's mean colour, with its outline
                const bool outline = (x > 0 && at(x - 1, y) != l) || (y > 0 && at(x, y - 1) != l);
                out.merged.set(x, y, outline ? kBorder : mean);
                continue;
            }
            const int py = y % P, pxl = x % P;
            std::uint8_t* o = out.merged.at(x, y);
            for (int ch = 0; ch < 3; ++ch) {
                const float v =
                    r.merged[std::size_t(l * r.d + ((ch * T + px.tau) * P + py) * P + pxl)] *
                        kImageNetStd[ch] +
                    kImageNetMean[ch];
                o[ch] = byte(v);
            }
        }
    return out;
}

} // namespace qmpp
