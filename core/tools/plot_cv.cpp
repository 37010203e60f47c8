// The sweep plot as a PNG (OpenCV drawing): one panel per metric, one curve per method.
#include "qmpp/error.h"
#include "qmpp/plotting.h"
#include "qmpp/sweep.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace qmpp {

namespace {

const cv::Scalar kInk(40, 40, 40), kGrid(225, 225, 225);
// A method's colour (the project's palette, methodRgb) as OpenCV's BGR.
cv::Scalar methodColour(const std::string& method) {
    const std::uint32_t rgb = methodRgb(method);
    return cv::Scalar(rgb & 0xff, (rgb >> 8) & 0xff, (rgb >> 16) & 0xff);
}

void text(cv::Mat& img, const std::string& s, cv::Point at, double scale = 0.42,
          cv::Scalar c = kInk) {
    cv::putText(img, s, at, cv::FONT_HERSHEY_SIMPLEX, scale, c, 1, cv::LINE_AA);
}

} // namespace

void writeSweepPlot(const std::vector<SweepRow>& rows, const std::string& path) {
    if (rows.empty()) throw UsageError("writeSweepPlot: no rows");
    const auto& cols = sweepColumns();
    const int pw = 420, ph = 300, ncol = 3, nrow = int((cols.size() + ncol - 1) / ncol), top = 44;
    cv::Mat img(top + nrow * ph, ncol * pw, CV_8UC3, cv::Scalar(255, 255, 255));
    std::vector<std::string> methods;
    for (const auto& r : rows)
        if (std::find(methods.begin(), methods.end(), r.method) == methods.end())
            methods.push_back(r.method);
    // legend
    int lx = 16;
    for (std::size_t m = 0; m < methods.size(); ++m) {
        const cv::Scalar c = methodColour(methods[m]);
        cv::line(img, {lx, 22}, {lx + 26, 22}, c, 2, cv::LINE_AA);
        cv::circle(img, {lx + 13, 22}, 3, c, cv::FILLED, cv::LINE_AA);
        text(img, methods[m], {lx + 32, 27}, 0.5);
        lx += 40 + 11 * int(methods[m].size()) + 20;
    }
    text(img, "budget sweep (x: budget = K / N)", {std::max(lx + 10, ncol * pw - 300), 27}, 0.45,
         cv::Scalar(110, 110, 110));

    for (std::size_t ci = 0; ci < cols.size(); ++ci) {
        const int ox = int(ci % ncol) * pw, oy = top + int(ci / ncol) * ph;
        const cv::Rect plot(ox + 58, oy + 28, pw - 80, ph - 70);
        double lo = 1e300, hi = -1e300;
        for (const auto& r : rows) {
            const double v = cols[ci].second(r);
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
        }
        if (lo > hi) lo = 0, hi = 1;
        const Ticks yt = niceTicks(lo, hi, 4), xt = niceTicks(0, 1, 5);
        lo = yt.lo, hi = yt.hi; // the axis ends on round ticks
        auto X = [&](double b) { return plot.x + int(std::lround(b * plot.width)); };
        auto Y = [&](double v) {
            return plot.y + plot.height - int(std::lround((v - lo) / (hi - lo) * plot.height));
        };
        for (double b : xt.at) { // grid and tick labels at round numbers
            cv::line(img, {X(b), plot.y}, {X(b), plot.y + plot.height}, kGrid, 1);
            text(img, tickLabel(b, xt.step), {X(b) - 8, plot.y + plot.height + 18}, 0.38);
        }
        for (double v : yt.at) {
            cv::line(img, {plot.x, Y(v)}, {plot.x + plot.width, Y(v)}, kGrid, 1);
            text(img, tickLabel(v, yt.step), {ox + 6, Y(v) + 4}, 0.38);
        }
        cv::rectangle(img, plot, kInk, 1);
        text(img, cols[ci].first, {plot.x, oy + 18}, 0.5);
        for (std::size_t m = 0; m < methods.size(); ++m) {
            std::vector<std::pair<double, double>> pts;
            for (const auto& r : rows)
                if (r.method == methods[m] && std::isfinite(cols[ci].second(r)))
                    pts.emplace_back(r.budget, cols[ci].second(r));
            std::sort(pts.begin(), pts.end());
            const cv::Scalar c = methodColour(methods[m]);
            for (std::size_t i = 0; i < pts.size(); ++i) {
                const cv::Point p(X(pts[i].first), Y(pts[i].second));
                if (i)
                    cv::line(img, {X(pts[i - 1].first), Y(pts[i - 1].second)}, p, c, 2,
                             cv::LINE_AA);
                cv::circle(img, p, 3, c, cv::FILLED, cv::LINE_AA);
            }
        }
    }
    bool ok = false;
    try {
        ok = cv::imwrite(path, img);
    } catch (const cv::Exception& e) {
        throw OutputError(path + ": cannot write PNG (" + e.what() + ")");
    }
    if (!ok) throw OutputError(path + ": cannot write PNG");
}

} // namespace qmpp
