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

void writeCurvePanels(const std::vector<CurvePanel>& panels, const std::string& note,
                      const std::string& path) {
    if (panels.empty()) throw UsageError("writeCurvePanels: no panels");
    const int pw = 420, ph = 300, ncol = std::min<int>(3, int(panels.size()));
    const int nrow = int((panels.size() + ncol - 1) / ncol), top = 44;
    cv::Mat img(top + nrow * ph, ncol * pw, CV_8UC3, cv::Scalar(255, 255, 255));
    std::vector<std::string> methods;
    for (const auto& p : panels)
        for (const auto& s : p.series)
            if (std::find(methods.begin(), methods.end(), s.method) == methods.end())
                methods.push_back(s.method);
    // legend
    int lx = 16;
    for (const std::string& m : methods) {
        const cv::Scalar c = methodColour(m);
        cv::line(img, {lx, 22}, {lx + 26, 22}, c, 2, cv::LINE_AA);
        cv::circle(img, {lx + 13, 22}, 3, c, cv::FILLED, cv::LINE_AA);
        text(img, m, {lx + 32, 27}, 0.5);
        lx += 40 + 11 * int(m.size()) + 20;
    }
    text(img, note, {std::max(lx + 10, ncol * pw - 8 * int(note.size()) - 10), 27}, 0.45,
         cv::Scalar(110, 110, 110));

    for (std::size_t pi = 0; pi < panels.size(); ++pi) {
        const CurvePanel& pan = panels[pi];
        const int ox = int(pi % ncol) * pw, oy = top + int(pi / ncol) * ph;
        const cv::Rect plot(ox + 58, oy + 28, pw - 80, ph - 70);
        double lo = 1e300, hi = -1e300, xlo = pan.xFromZero ? 0.0 : 1e300, xhi = -1e300;
        for (const auto& s : pan.series)
            for (const auto& pt : s.points) {
                if (!std::isfinite(pt.y)) continue;
                lo = std::min(lo, pt.interval ? pt.lo : pt.y);
                hi = std::max(hi, pt.interval ? pt.hi : pt.y);
                xlo = std::min(xlo, pt.x);
                xhi = std::max(xhi, pt.x);
            }
        if (lo > hi) lo = 0, hi = 1;
        if (xlo > xhi) xlo = 0, xhi = 1;
        const Ticks yt = niceTicks(lo, hi, 4), xt = niceTicks(xlo, xhi, 5);
        lo = yt.lo, hi = yt.hi; // the axes end on round ticks
        auto X = [&](double v) {
            return plot.x + int(std::lround((v - xt.lo) / (xt.hi - xt.lo) * plot.width));
        };
        auto Y = [&](double v) {
            return plot.y + plot.height - int(std::lround((v - lo) / (hi - lo) * plot.height));
        };
        for (double v : xt.at) { // grid and tick labels at round numbers
            cv::line(img, {X(v), plot.y}, {X(v), plot.y + plot.height}, kGrid, 1);
            text(img, tickLabel(v, xt.step), {X(v) - 8, plot.y + plot.height + 18}, 0.38);
        }
        for (double v : yt.at) {
            cv::line(img, {plot.x, Y(v)}, {plot.x + plot.width, Y(v)}, kGrid, 1);
            text(img, tickLabel(v, yt.step), {ox + 6, Y(v) + 4}, 0.38);
        }
        cv::rectangle(img, plot, kInk, 1);
        text(img, pan.title, {plot.x, oy + 18}, 0.5);
        text(img, pan.xLabel, {plot.x + plot.width - 7 * int(pan.xLabel.size()), oy + ph - 12}, 0.4,
             cv::Scalar(110, 110, 110));
        for (const auto& s : pan.series) {
            std::vector<CurvePoint> pts;
            for (const auto& pt : s.points)
                if (std::isfinite(pt.y)) pts.push_back(pt);
            std::sort(pts.begin(), pts.end(),
                      [](const CurvePoint& a, const CurvePoint& b) { return a.x < b.x; });
            const cv::Scalar c = methodColour(s.method);
            for (std::size_t i = 0; i < pts.size(); ++i) {
                const cv::Point p(X(pts[i].x), Y(pts[i].y));
                if (i) cv::line(img, {X(pts[i - 1].x), Y(pts[i - 1].y)}, p, c, 2, cv::LINE_AA);
                if (pts[i].interval) {
                    cv::line(img, {p.x, Y(pts[i].lo)}, {p.x, Y(pts[i].hi)}, c, 1, cv::LINE_AA);
                    cv::line(img, {p.x - 3, Y(pts[i].lo)}, {p.x + 3, Y(pts[i].lo)}, c, 1);
                    cv::line(img, {p.x - 3, Y(pts[i].hi)}, {p.x + 3, Y(pts[i].hi)}, c, 1);
                }
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

void writeSweepPlot(const std::vector<SweepRow>& rows, const std::string& path) {
    if (rows.empty()) throw UsageError("writeSweepPlot: no rows");
    std::vector<CurvePanel> panels;
    for (const auto& col : sweepColumns()) {
        CurvePanel pan;
        pan.title = col.first;
        pan.xFromZero = true;
        for (const auto& r : rows) {
            auto it = std::find_if(pan.series.begin(), pan.series.end(),
                                   [&](const CurveSeries& s) { return s.method == r.method; });
            if (it == pan.series.end()) {
                pan.series.push_back({r.method, {}});
                it = pan.series.end() - 1;
            }
            CurvePoint pt;
            pt.x = r.budget;
            pt.y = col.second(r);
            it->points.push_back(pt);
        }
        panels.push_back(std::move(pan));
    }
    writeCurvePanels(panels, "budget sweep (x: budget = K / N)", path);
}

} // namespace qmpp
