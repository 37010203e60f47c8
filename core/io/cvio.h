// OpenCV helpers shared by the image and video inputs (internal to core/io).
#pragma once

#include "qmpp/inputs.h"

#include <opencv2/core.hpp>

namespace qmpp::cvio {

// The frame as the tokenizer sees it: scaled to `width` (0: own size), sides snapped to
// multiples of P (at least P), RGB.
ImageInput fromBgr(const cv::Mat& bgr, int patch, int width, const std::string& path);

} // namespace qmpp::cvio
