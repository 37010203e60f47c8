// Image tokenizer (OpenCV core, imgproc, imgcodecs).
#include "cvio.h"
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <mutex>
#include <unistd.h>

namespace qmpp {

namespace {

// 100 megapixels: 1.2 GB of float tokens at any patch size; larger images are refused.
constexpr double kMaxImagePixels = 100e6;

} // namespace

namespace cvio {

namespace {
std::mutex g_stderrMutex; // one redirection at a time
} // namespace

QuietStderr::QuietStderr() {
    g_stderrMutex.lock();
    std::fflush(stderr);
    // opened once: this runs around every decoded video frame
    static const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    m_saved = ::dup(2);
    if (devnull >= 0) ::dup2(devnull, 2);
}

QuietStderr::~QuietStderr() {
    std::fflush(stderr);
    if (m_saved >= 0) {
        ::dup2(m_saved, 2);
        ::close(m_saved);
    }
    g_stderrMutex.unlock();
}

ImageInput fromBgr(const cv::Mat& bgr, int patch, int width, const std::string& path) {
    // Each side to the nearest multiple of P, at least P; with `width`, scaled to that width first.
    auto snap = [patch](double v) {
        return std::max(patch, static_cast<int>(std::lround(v / patch)) * patch);
    };
    const double scale = width > 0 ? double(width) / bgr.cols : 1.0;
    const int w = snap(bgr.cols * scale), h = snap(bgr.rows * scale);
    cv::Mat resized;
    if (w != bgr.cols || h != bgr.rows)
        cv::resize(bgr, resized, cv::Size(w, h), 0, 0,
                   w < bgr.cols ? cv::INTER_AREA : cv::INTER_LINEAR);
    else
        resized = bgr;
    cv::Mat rgb;
    cv::cvtColor(resized, rgb, cv::COLOR_BGR2RGB);
    ImageInput img;
    img.path = path;
    img.width = w;
    img.height = h;
    img.patch = patch;
    img.originalWidth = width > 0 ? w : bgr.cols;
    img.originalHeight = width > 0 ? h : bgr.rows;
    img.rgb.assign(rgb.data, rgb.data + std::size_t(w) * h * 3);
    return img;
}

} // namespace cvio

bool haveImageSupport() {
    return true;
}

namespace {

cv::Mat decodeBgr(const std::string& path) {
    requireFile(path);
    requireImageSize(path, kMaxImagePixels);
    cv::Mat bgr;
    try {
        const cvio::QuietStderr quiet;
        bgr = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
        throw InputError(path + ": cannot decode the image (" + e.what() + ")");
    }
    if (bgr.empty())
        throw InputError(path +
                         ": not a readable image (OpenCV could not decode it, or it has more "
                         "than 2^30 pixels)");
    if (double(bgr.cols) * bgr.rows > kMaxImagePixels)
        throw InputError(path + ": the image has " + std::to_string(bgr.cols) + " x " +
                         std::to_string(bgr.rows) +
                         " pixels; at most 100 megapixels are tokenized "
                         "(resize it first)");
    return bgr;
}

} // namespace

TokenSet tokenizeImage(const std::string& path, int patch, const Projection* proj,
                       ImageInput* image) {
    if (patch < 1 || patch > 256) throw UsageError("patch size must lie in 1..256");
    const cv::Mat bgr = decodeBgr(path);
    ImageInput img = cvio::fromBgr(bgr, patch, 0, path);
    img.projected = proj != nullptr;
    TokenSet t = tokenizeFrames({&img}, 1, proj);
    if (image) *image = std::move(img);
    return t;
}

std::vector<std::uint8_t> decodeImageRgb(const std::string& path, int& width, int& height) {
    const cv::Mat bgr = decodeBgr(path);
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    width = rgb.cols;
    height = rgb.rows;
    return std::vector<std::uint8_t>(rgb.data, rgb.data + std::size_t(width) * height * 3);
}

} // namespace qmpp
