// OpenCV's part of the overlays (internal to core/tools): it only encodes and resizes what the
// one renderer (qmpp/overlay.h) draws.
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/overlay.h"

#include <opencv2/core.hpp>

namespace qmpp::cvio {

cv::Mat toMat(const RgbImage& img); // RGB -> BGR copy

// The saliency over the image and the groups of one frame's tokens: temporal slot `slot` of a
// video, the frame `tau` of its tubelets of `tubelet` frames.
cv::Mat saliencyMat(const ImageInput& img, const TokenSet& t, const MergeResult& r, int slot = 0);
GroupPictures groupPictures(const ImageInput& img, const TokenSet& t, const MergeResult& r,
                            int slot = 0, int tubelet = 1, int tau = 0);

} // namespace qmpp::cvio
