// The overlay PNGs: what qmpp/overlay.h draws, resized to the image's own size and encoded.
#include "cvrender.h"
#include "qmpp/error.h"
#include "qmpp/render.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace qmpp {

namespace {

// Writes `m` (made at the tokenized resolution) at `size`, the image's own resolution.
void writePng(const std::string& path, const cv::Mat& m, cv::Size size, int interpolation) {
    bool ok = false;
    try {
        cv::Mat out = m;
        if (m.size() != size) cv::resize(m, out, size, 0, 0, interpolation);
        ok = cv::imwrite(path, out);
    } catch (const cv::Exception& e) {
        throw OutputError(path + ": cannot write PNG (" + e.what() + ")");
    }
    if (!ok) throw OutputError(path + ": cannot write PNG");
}

} // namespace

void writeRgbPng(const RgbImage& img, const std::string& path) {
    writePng(path, cvio::toMat(img), cv::Size(img.width, img.height), cv::INTER_NEAREST);
}

namespace cvio {

cv::Mat toMat(const RgbImage& img) {
    cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<std::uint8_t*>(img.rgb.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    return bgr;
}

namespace {

TokenGrid frameGrid(const ImageInput& img, const TokenSet& t, int slot) {
    TokenGrid g = tokenGrid(t, img.patch);
    g.offset = i64(slot) * g.rows * g.cols;
    return g;
}

} // namespace

cv::Mat saliencyMat(const ImageInput& img, const TokenSet& t, const MergeResult& r, int slot) {
    const TokenGrid g = frameGrid(img, t, slot);
    const RgbImage base = baseImage(img);
    return toMat(blendHeatmap(base, g, tokenHeatmap(g, r.n, r.saliency.data())));
}

GroupPictures groupPictures(const ImageInput& img, const TokenSet& t, const MergeResult& r,
                            int slot, int tubelet, int tau) {
    PixelTokens px;
    px.raw = !img.projected;
    px.patch = img.patch;
    px.tubelet = tubelet;
    px.tau = tau;
    return renderGroups(baseImage(img), frameGrid(img, t, slot), r, px);
}

} // namespace cvio

std::vector<std::string> writeImageOverlays(const ImageInput& img, const TokenSet& t,
                                            const MergeResult& r, const std::string& dir) {
    // saliency.png: the image under a viridis heatmap of s, one block per token, at the image's
    // own resolution, with a colour bar (1 at the top) on the right.
    const cv::Mat sal = cvio::saliencyMat(img, t, r);
    const int H = img.originalHeight, barW = std::max(8, img.originalWidth / 40);
    RgbImage ramp(1, H);
    for (int y = 0; y < H; ++y)
        ramp.set(0, y, viridisRgb(1.0 - double(y) / std::max(1, H - 1)));
    cv::Mat bar, salFull;
    cv::resize(cvio::toMat(ramp), bar, cv::Size(barW, H), 0, 0, cv::INTER_NEAREST);
    cv::resize(sal, salFull, cv::Size(img.originalWidth, H), 0, 0, cv::INTER_NEAREST);
    const cv::Mat gap(img.originalHeight, barW / 2, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::Mat salOut;
    cv::hconcat(std::vector<cv::Mat>{salFull, gap, bar}, salOut);
    writePng(dir + "/saliency.png", salOut, salOut.size(), cv::INTER_NEAREST);

    // clusters.png (ToMe's visualization) and merged.png: raw-pixel tokens decode back to
    // pixels exactly; projected tokens cannot, so their group's mean colour is shown.
    const GroupPictures pics = cvio::groupPictures(img, t, r);
    const cv::Size original(img.originalWidth, img.originalHeight);
    writePng(dir + "/clusters.png", cvio::toMat(pics.clusters), original, cv::INTER_NEAREST);
    writePng(dir + "/merged.png", cvio::toMat(pics.merged), original, cv::INTER_LINEAR);
    return {"saliency.png", "clusters.png", "merged.png"};
}

} // namespace qmpp
