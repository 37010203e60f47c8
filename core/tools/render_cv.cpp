// Overlay images with OpenCV: the saliency heatmap and the groups over an image, as PNGs.
// Group colours are groupRgb's (qmpp/views.h), the palette the studio and the HTML report use.
#include "cvrender.h"
#include "qmpp/error.h"
#include "qmpp/render.h"
#include "qmpp/views.h"

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

cv::Vec3b groupBgr(i64 g) {
    const std::uint32_t rgb = groupRgb(g);
    return cv::Vec3b(rgb & 0xff, (rgb >> 8) & 0xff, (rgb >> 16) & 0xff);
}

} // namespace

namespace cvio {

cv::Mat toMat(const ImageInput& img) { // RGB -> BGR copy for OpenCV
    cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<std::uint8_t*>(img.rgb.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    return bgr;
}

cv::Mat renderSaliency(const cv::Mat& base, int rows, int cols, const float* saliency) {
    cv::Mat s8(rows, cols, CV_8UC1);
    for (i64 i = 0; i < i64(rows) * cols; ++i)
        s8.at<std::uint8_t>(int(i / cols), int(i % cols)) =
            cv::saturate_cast<std::uint8_t>(std::lround(255.0 * saliency[i]));
    cv::Mat heat, heatBig, sal;
    cv::applyColorMap(s8, heat, cv::COLORMAP_VIRIDIS);
    cv::resize(heat, heatBig, base.size(), 0, 0, cv::INTER_NEAREST);
    cv::addWeighted(base, 0.45, heatBig, 0.55, 0.0, sal);
    return sal;
}

cv::Mat renderClusters(const cv::Mat& base, int patch, int cols, const i64* labels, i64 k) {
    auto tokenAt = [&](int y, int x) { return i64(y / patch) * cols + x / patch; };
    std::vector<cv::Vec3d> sum(static_cast<std::size_t>(k), cv::Vec3d(0, 0, 0));
    std::vector<double> cnt(static_cast<std::size_t>(k), 0.0);
    for (int y = 0; y < base.rows; ++y)
        for (int x = 0; x < base.cols; ++x) {
            const i64 g = labels[tokenAt(y, x)];
            if (g < 0) continue;
            const auto& px = base.at<cv::Vec3b>(y, x);
            sum[g] += cv::Vec3d(px[0], px[1], px[2]);
            cnt[g] += 1;
        }
    cv::Mat clusters(base.size(), CV_8UC3);
    for (int y = 0; y < base.rows; ++y)
        for (int x = 0; x < base.cols; ++x) {
            const i64 g = labels[tokenAt(y, x)];
            auto& out = clusters.at<cv::Vec3b>(y, x);
            if (g < 0) {
                out = cv::Vec3b(0, 0, 0); // dropped by pruning
                continue;
            }
            const cv::Vec3d m = sum[g] / std::max(1.0, cnt[g]);
            out = cv::Vec3b(cv::saturate_cast<std::uint8_t>(m[0]),
                            cv::saturate_cast<std::uint8_t>(m[1]),
                            cv::saturate_cast<std::uint8_t>(m[2]));
        }
    // A pixel is on its group's edge when a 4-neighbour belongs to another group; one pixel
    // wide, drawn inside the group in the group's colour.
    for (int y = 0; y < base.rows; ++y)
        for (int x = 0; x < base.cols; ++x) {
            const i64 g = labels[tokenAt(y, x)];
            if (g < 0) continue;
            const bool boundary = (y > 0 && labels[tokenAt(y - 1, x)] != g) ||
                                  (x > 0 && labels[tokenAt(y, x - 1)] != g) ||
                                  (y + 1 < base.rows && labels[tokenAt(y + 1, x)] != g) ||
                                  (x + 1 < base.cols && labels[tokenAt(y, x + 1)] != g);
            if (boundary) clusters.at<cv::Vec3b>(y, x) = groupBgr(g);
        }
    return clusters;
}

} // namespace cvio

std::vector<std::string> writeImageOverlays(const ImageInput& img, const TokenSet& t,
                                            const MergeResult& r, const std::string& dir) {
    const int P = img.patch, rows = t.gridRows, cols = t.gridCols;
    const cv::Mat base = cvio::toMat(img);
    auto tokenAt = [&](int y, int x) { return i64(y / P) * cols + x / P; };

    // saliency.png: the image under a viridis heatmap of s, one block per token, with a colour bar.
    const cv::Mat sal = cvio::renderSaliency(base, rows, cols, r.saliency.data());
    // at the image's own resolution, with a colour bar (1 at the top) on the right
    const int H = img.originalHeight, barW = std::max(8, img.originalWidth / 40);
    cv::Mat ramp(H, 1, CV_8UC1);
    for (int y = 0; y < H; ++y)
        ramp.at<std::uint8_t>(y, 0) =
            cv::saturate_cast<std::uint8_t>(255 - 255 * y / std::max(1, H - 1));
    cv::Mat rampC, bar, salFull;
    cv::applyColorMap(ramp, rampC, cv::COLORMAP_VIRIDIS);
    cv::resize(rampC, bar, cv::Size(barW, H), 0, 0, cv::INTER_NEAREST);
    cv::resize(sal, salFull, cv::Size(img.originalWidth, H), 0, 0, cv::INTER_NEAREST);
    const cv::Mat gap(img.originalHeight, barW / 2, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::Mat salOut;
    cv::hconcat(std::vector<cv::Mat>{salFull, gap, bar}, salOut);
    writePng(dir + "/saliency.png", salOut, salOut.size(), cv::INTER_NEAREST);

    // clusters.png: each group filled with the mean colour of its pixels, group edges coloured
    // (ToMe's visualization).
    const cv::Mat clusters = cvio::renderClusters(base, P, cols, r.labels.data(), r.k);
    const cv::Size original(img.originalWidth, img.originalHeight);
    writePng(dir + "/clusters.png", clusters, original, cv::INTER_NEAREST);

    // merged.png: each token replaced by its merged token. Raw-pixel tokens decode back to
    // pixels exactly; projected tokens cannot, so their group's mean colour is shown.
    cv::Mat merged(base.size(), CV_8UC3, cv::Scalar(0, 0, 0));
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            const i64 g = r.labels[tokenAt(y, x)];
            if (g < 0) continue;
            if (img.projected) {
                merged.at<cv::Vec3b>(y, x) = clusters.at<cv::Vec3b>(y, x);
                continue;
            }
            const int py = y % P, px = x % P;
            cv::Vec3b out;
            for (int ch = 0; ch < 3; ++ch) {
                const float v = r.merged[g * t.d + (i64(ch) * P + py) * P + px] * kImageNetStd[ch] +
                                kImageNetMean[ch];
                out[2 - ch] = cv::saturate_cast<std::uint8_t>(std::lround(255.0 * v)); // RGB -> BGR
            }
            merged.at<cv::Vec3b>(y, x) = out;
        }
    if (img.projected) // the fill came from clusters.png; draw plain borders instead of colours
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x)
                if (y % P == 0 || x % P == 0) {
                    const i64 g = r.labels[tokenAt(y, x)];
                    const bool up = y > 0 && r.labels[tokenAt(y - 1, x)] != g;
                    const bool left = x > 0 && r.labels[tokenAt(y, x - 1)] != g;
                    if (up || left) merged.at<cv::Vec3b>(y, x) = cv::Vec3b(40, 40, 40);
                }
    writePng(dir + "/merged.png", merged, original, cv::INTER_LINEAR);
    return {"saliency.png", "clusters.png", "merged.png"};
}

} // namespace qmpp
