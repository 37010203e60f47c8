// The one renderer of a merge's overlay pictures, drawn in plain RGB without any toolkit. The
// CLI's PNGs and overlay video (OpenCV encodes them), the studio's canvas (wrapped in a QImage)
// and the HTML report all draw through it, in groupRgb's palette and one viridis.
#pragma once

#include "qmpp/types.h"

#include <cstdint>
#include <vector>

namespace qmpp {

struct ImageInput;

// 8-bit RGB, row-major, 3 bytes per pixel.
struct RgbImage {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;

    RgbImage() = default;
    RgbImage(int w, int h, std::uint32_t fill = 0);
    std::uint8_t* at(int x, int y) { return rgb.data() + (std::size_t(y) * width + x) * 3; }
    const std::uint8_t* at(int x, int y) const {
        return rgb.data() + (std::size_t(y) * width + x) * 3;
    }
    void set(int x, int y, std::uint32_t rgb0xRRGGBB);
};

// Where each token sits in the picture: `rows` x `cols` cells of `cell` pixels, tokens in row
// order. `frameTokens` tokens per frame: a video's frame `slot` shows tokens from slot *
// frameTokens on.
struct TokenGrid {
    int rows = 0, cols = 0, cell = 1;
    i64 offset = 0; // the first token shown (a video frame's slot)
    i64 tokenAt(int x, int y) const { return offset + i64(y / cell) * cols + x / cell; }
};
// An image or video's own grid of `patch`-pixel cells, or, for embeddings, a near-square grid
// of 16-pixel cells.
TokenGrid tokenGrid(const TokenSet& t, int patch);

// viridis, v in [0, 1] (clamped; NaN is 0) -> 0xRRGGBB: matplotlib's table at nine points,
// linearly interpolated.
std::uint32_t viridisRgb(double v);

// The picture under the overlays: the tokenized image itself, or, for embeddings, grey cells.
RgbImage baseImage(const ImageInput& img);
RgbImage gridImage(const TokenGrid& g, i64 n);

// One pixel per token: values * scale through viridis (cells past the last token are black).
RgbImage tokenHeatmap(const TokenGrid& g, i64 n, const float* values, double scale = 1.0);
// `base` under `heat` (one pixel per token, blown up to cells), weights 0.45 and 0.55.
RgbImage blendHeatmap(const RgbImage& base, const TokenGrid& g, const RgbImage& heat);

// How merged tokens turn back into pixels: raw-pixel tokens are ImageNet-normalized patches,
// channel-major (3, T, P, P); `tau` picks the frame's slice of a tubelet token.
struct PixelTokens {
    bool raw = false; // false: projected or other tokens, which show their group's mean colour
    int patch = 16, tubelet = 1, tau = 0;
};

struct GroupPictures {
    RgbImage clusters; // each group filled with its pixels' mean colour, edges in its colour
    RgbImage groups;   // each group in its colour
    RgbImage merged;   // each token replaced by its merged token
};
// ToMe's visualization of labels [N] (-1: dropped, drawn dark) over `base`.
GroupPictures renderGroups(const RgbImage& base, const TokenGrid& g, const MergeResult& r,
                           const PixelTokens& px);

// A model's input split into grid x grid patches, drawn `scale` times as large (the Model
// page, `qmpp eval --overlays`): ToMe's visualization of sources (tome/vis.py: each token's
// patches filled with their mean colour, the pixels on its edge after one erosion in the
// token's own colour, dropped patches black; owner[p] is patch p's token, -1 dropped), and a
// heat map of per-patch values (min-max normalized viridis over `in` with `alpha`; NaN: the
// input darkened to a fifth).
RgbImage tokenSourcesImage(const RgbImage& in, const std::vector<std::int32_t>& owner, int grid,
                           int scale);
RgbImage patchHeatImage(const RgbImage& in, const std::vector<double>& perPatch, int grid,
                        int scale, double alpha);

} // namespace qmpp
