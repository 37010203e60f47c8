// OpenCV helpers shared by the image and video inputs (internal to core/io).
#pragma once

#include "qmpp/inputs.h"

#include <opencv2/core.hpp>

namespace qmpp::cvio {

// While one lives, the process's stderr goes to /dev/null: the codec libraries under OpenCV
// (libpng, libjpeg, FFmpeg) print their own complaints there ("libpng error: Read Error",
// "Premature end of JPEG file") before our message, which already says what is wrong.
class QuietStderr {
  public:
    QuietStderr();
    ~QuietStderr();
    QuietStderr(const QuietStderr&) = delete;
    QuietStderr& operator=(const QuietStderr&) = delete;

  private:
    int m_saved = -1;
};

// The frame as the tokenizer sees it: scaled to `width` (0: own size), sides snapped to
// multiples of P (at least P), RGB.
ImageInput fromBgr(const cv::Mat& bgr, int patch, int width, const std::string& path);

} // namespace qmpp::cvio
