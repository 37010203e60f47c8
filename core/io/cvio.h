// OpenCV helpers shared by the image and video inputs (internal to core/io).
#pragma once

#include "qmpp/inputs.h"

#include <opencv2/core.hpp>

namespace qmpp::cvio {

cv::Mat toMat(const ImageInput& img); // RGB -> BGR copy
// A distinct colour per group: hues spaced by the golden ratio.
cv::Vec3b groupColour(i64 g);
// The frame as the tokenizer sees it: scaled to `width` (0: own size), sides snapped to
// multiples of P (at least P), RGB.
ImageInput fromBgr(const cv::Mat& bgr, int patch, int width, const std::string& path);
// The image under a viridis heatmap of the saliency (one block per token), at base's size.
cv::Mat renderSaliency(const cv::Mat& base, int rows, int cols, const float* saliency);
// Each group filled with the mean colour of its pixels, group edges in the group's colour
// (ToMe's visualization); label -1 (dropped) is black.
cv::Mat renderClusters(const cv::Mat& base, int patch, int cols, const i64* labels, i64 k);

} // namespace qmpp::cvio
