// The overlay pictures (qmpp/overlay.h): token cells coloured by value or by group.
#include "qmpp/overlay.h"

#include "qmpp/inputs.h"
#include "qmpp/views.h"

#include <algorithm>
#include <cmath>

namespace qmpp {

namespace {

std::uint8_t byte(double v) { // [0, 1] -> 0..255, rounded half up (NaN: 0)
    const double c = v > 0.0 ? (v < 1.0 ? v : 1.0) : 0.0; // NaN fails v > 0
    return static_cast<std::uint8_t>(255.0 * c + 0.5);
}

void put(std::uint8_t* p, std::uint32_t c) {
    p[0] = std::uint8_t(c >> 16);
    p[1] = std::uint8_t(c >> 8);
    p[2] = std::uint8_t(c);
}

constexpr std::uint32_t kDark = 0x141414; // dropped tokens and cells past the last token
constexpr std::uint32_t kBorder = 0x282828;

} // namespace

RgbImage::RgbImage(int w, int h, std::uint32_t fill)
    : width(w), height(h), rgb(std::size_t(w) * std::size_t(h) * 3) {
    if (fill == 0) return;
    for (std::size_t i = 0; i < rgb.size(); i += 3)
        put(rgb.data() + i, fill);
}

void RgbImage::set(int x, int y, std::uint32_t c) {
    put(at(x, y), c);
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
    std::vector<int> cellCol(static_cast<std::size_t>(w));
    for (int x = 0; x < w; ++x)
        cellCol[x] = x / g.cell;
    for (int y = 0; y < h; ++y) {
        const i64 first = g.tokenAt(0, y);
        i64* row = label.data() + std::size_t(y) * w;
        for (int x = 0; x < w; ++x) {
            const i64 i = first + cellCol[x];
            row[x] = i < n ? r.labels[std::size_t(i)] : -2;
        }
    }

    std::vector<double> sum(std::size_t(std::max<i64>(r.k, 0)) * 3, 0.0), cnt(sum.size() / 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const i64 l = label[std::size_t(y) * w + x];
            if (l < 0 || l >= r.k) continue;
            const std::uint8_t* p = base.at(x, y);
            for (int ch = 0; ch < 3; ++ch)
                sum[3 * l + ch] += p[ch];
            cnt[l] += 1;
        }
    // per group: its mean colour and its palette colour, once
    std::vector<std::uint32_t> mean(cnt.size()), colour(cnt.size());
    for (std::size_t l = 0; l < cnt.size(); ++l) {
        const double c = std::max(1.0, cnt[l]);
        std::uint32_t rgb = 0;
        for (int ch = 0; ch < 3; ++ch)
            rgb = (rgb << 8) | std::uint32_t(std::lround(sum[3 * l + ch] / c));
        mean[l] = rgb;
        colour[l] = groupRgb(i64(l));
    }

    GroupPictures out{RgbImage(w, h), RgbImage(w, h), RgbImage(w, h)};
    const int P = px.patch, T = std::max(1, px.tubelet);
    const float* merged = r.merged.data();
    for (int y = 0; y < h; ++y) {
        const i64* row = label.data() + std::size_t(y) * w;
        const i64* up = y > 0 ? row - w : nullptr;
        const i64* down = y + 1 < h ? row + w : nullptr;
        std::uint8_t* cl = out.clusters.at(0, y);
        std::uint8_t* gr = out.groups.at(0, y);
        std::uint8_t* me = out.merged.at(0, y);
        const int py = y % P;
        for (int x = 0; x < w; ++x, cl += 3, gr += 3, me += 3) {
            const i64 l = row[x];
            if (l < 0 || l >= r.k) {
                put(cl, kDark);
                put(gr, kDark);
                put(me, kDark);
                continue;
            }
            // a pixel is on its group's edge when a 4-neighbour belongs to another group
            const bool before = (x > 0 && row[x - 1] != l) || (up && up[x] != l);
            const bool edge = before || (x + 1 < w && row[x + 1] != l) || (down && down[x] != l);
            put(cl, edge ? colour[l] : mean[l]);
            put(gr, colour[l]);
            if (!px.raw) { // the group's mean colour, with its outline
                put(me, before ? kBorder : mean[l]);
                continue;
            }
            const float* tok = merged + std::size_t(l * r.d);
            const int pxl = x % P;
            for (int ch = 0; ch < 3; ++ch)
                me[ch] = byte(tok[((ch * T + px.tau) * P + py) * P + pxl] * kImageNetStd[ch] +
                              kImageNetMean[ch]);
        }
    }
    return out;
}

namespace {

// The patch of a pixel of an image drawn `cell` pixels per patch.
int patchOf(int x, int y, int cell, int grid) {
    return std::min(y / cell, grid - 1) * grid + std::min(x / cell, grid - 1);
}

std::uint32_t pixelOf(const RgbImage& in, int x, int y, int scale) {
    const std::uint8_t* p = in.at(x / scale, y / scale);
    return (std::uint32_t(p[0]) << 16) | (std::uint32_t(p[1]) << 8) | p[2];
}

} // namespace

RgbImage tokenSourcesImage(const RgbImage& in, const std::vector<std::int32_t>& owner, int grid,
                           int scale) {
    const int w = in.width * scale, h = in.height * scale, cell = std::max(1, w / grid);
    const int tokens =
        owner.empty() ? 1 : std::max(1, *std::max_element(owner.begin(), owner.end()) + 1);
    std::vector<double> sum(std::size_t(tokens) * 3, 0.0), n(std::size_t(tokens), 0.0);
    std::vector<int> tokenOf(std::size_t(w) * std::size_t(h), -1);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int t = owner[std::size_t(patchOf(x, y, cell, grid))];
            tokenOf[std::size_t(y) * w + x] = t;
            if (t < 0) continue;
            const std::uint8_t* p = in.at(x / scale, y / scale);
            for (int c = 0; c < 3; ++c)
                sum[std::size_t(t) * 3 + c] += p[c];
            n[std::size_t(t)] += 1;
        }
    auto at = [&](int x, int y) {
        return x < 0 || y < 0 || x >= w || y >= h ? -2 : tokenOf[std::size_t(y) * w + x];
    };
    RgbImage out(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int t = at(x, y);
            if (t < 0) continue; // dropped: black
            // binary_erosion with a cross: an edge pixel has a 4-neighbour outside its token
            const bool edge =
                at(x - 1, y) != t || at(x + 1, y) != t || at(x, y - 1) != t || at(x, y + 1) != t;
            if (edge) {
                out.set(x, y, groupRgb(t));
                continue;
            }
            std::uint8_t* q = out.at(x, y);
            for (int c = 0; c < 3; ++c)
                q[c] = std::uint8_t(sum[std::size_t(t) * 3 + c] / n[std::size_t(t)]);
        }
    return out;
}

RgbImage patchHeatImage(const RgbImage& in, const std::vector<double>& perPatch, int grid,
                        int scale, double alpha) {
    const int w = in.width * scale, h = in.height * scale, cell = std::max(1, w / grid);
    double lo = 1e300, hi = -1e300;
    for (double v : perPatch)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    RgbImage out(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const double v = perPatch[std::size_t(patchOf(x, y, cell, grid))];
            const std::uint32_t p = pixelOf(in, x, y, scale);
            std::uint8_t* q = out.at(x, y);
            if (!std::isfinite(v)) {
                for (int c = 0; c < 3; ++c)
                    q[c] = std::uint8_t(((p >> (16 - 8 * c)) & 0xff) / 5);
                continue;
            }
            const std::uint32_t col = viridisRgb(hi > lo ? (v - lo) / (hi - lo) : 0.5);
            for (int c = 0; c < 3; ++c) {
                const double a = double((p >> (16 - 8 * c)) & 0xff);
                const double b = double((col >> (16 - 8 * c)) & 0xff);
                q[c] = std::uint8_t(std::lround(a * (1 - alpha) + b * alpha));
            }
        }
    return out;
}

} // namespace qmpp
