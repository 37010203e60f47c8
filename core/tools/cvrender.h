// OpenCV renderers of overlays (internal to core/tools): the PNGs and the overlay video.
#pragma once

#include "qmpp/inputs.h"

#include <opencv2/core.hpp>

namespace qmpp::cvio {

cv::Mat toMat(const ImageInput& img); // RGB -> BGR copy
// The image under a viridis heatmap of the saliency (one block per token), at base's size.
cv::Mat renderSaliency(const cv::Mat& base, int rows, int cols, const float* saliency);
// Each group filled with the mean colour of its pixels, group edges in the group's colour
// (ToMe's visualization); label -1 (dropped) is black.
cv::Mat renderClusters(const cv::Mat& base, int patch, int cols, const i64* labels, i64 k);

} // namespace qmpp::cvio
