// What every plot of the project shares, whoever draws it (the studio's QCustomPlot pages,
// sweep.png, the HTML report's SVG): axis ticks at round numbers, and one colour-blind-safe
// palette with a fixed colour per method.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qmpp {

// Ticks at multiples of 1, 2 or 5 times a power of ten, about `target` of them, on a range
// widened to the outer ticks ("loose" labels): lo <= the data's low, hi >= its high.
struct Ticks {
    double lo = 0, hi = 1, step = 1;
    std::vector<double> at;
};
Ticks niceTicks(double lo, double hi, int target = 5);
// A tick's label with as many decimals as the step needs (0.2 -> "0.2", 1e-3 step -> "0.004",
// no "0.30000000000000004", "-0" is "0"); steps of 1e4 and up, or under 1e-4, in %g form.
std::string tickLabel(double value, double step);

// The Okabe-Ito palette (colour-blind safe), 0xRRGGBB, in the order series take it: blue,
// orange, bluish green, vermillion, reddish purple, sky blue, yellow, black.
std::uint32_t seriesRgb(std::size_t i);
// The colour of a method, the same in every plot: quickmerge blue, tome orange, topk green,
// random vermillion, others the rest of the palette by a hash of the name.
std::uint32_t methodRgb(const std::string& method);

// Panels of curves, one curve per method in its colour, drawn as a PNG (OpenCV; InputError in a
// build without it). A point may carry an interval (lo <= y <= hi), drawn as an error bar.
struct CurvePoint {
    double x = 0, y = 0, lo = 0, hi = 0;
    bool interval = false;
};
struct CurveSeries {
    std::string method;
    std::vector<CurvePoint> points; // drawn in order of x
};
struct CurvePanel {
    std::string title, xLabel;
    std::vector<CurveSeries> series;
    bool xFromZero = false; // the x axis starts at 0 (else at the data's low)
};
void writeCurvePanels(const std::vector<CurvePanel>& panels, const std::string& note,
                      const std::string& path);

} // namespace qmpp
