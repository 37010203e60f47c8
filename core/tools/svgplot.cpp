// Small SVG plots for the HTML report: see svgplot.h.
#include "svgplot.h"

#include "qmpp/htmlreport.h"
#include "qmpp/plotting.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace qmpp::svg {

std::string hex(double r, double g, double b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(std::lround(std::clamp(r, 0.0, 1.0) * 255)),
                  int(std::lround(std::clamp(g, 0.0, 1.0) * 255)),
                  int(std::lround(std::clamp(b, 0.0, 1.0) * 255)));
    return buf;
}

std::string num(double v, int prec) {
    if (!std::isfinite(v)) return "–";
    std::ostringstream os;
    os.precision(prec);
    os << v;
    return os.str();
}

namespace {

// --- SVG plots -------------------------------------------------------------------------------

constexpr int kW = 640, kH = 260, kL = 62, kR = 16, kT = 28, kB = 44;

struct Axis {
    double lo, hi;
    bool log;
    double map(double v, double a, double b) const {
        const double f = log ? (std::log10(std::max(v, 1e-12)) - std::log10(lo)) /
                                   (std::log10(hi) - std::log10(lo))
                             : (v - lo) / (hi - lo);
        return a + (b - a) * f;
    }
};

Axis niceAxis(double lo, double hi, bool log) {
    if (log) {
        lo = std::pow(10.0, std::floor(std::log10(std::max(lo, 1e-9))));
        hi = std::pow(10.0, std::ceil(std::log10(std::max(hi, lo * 10))));
        return {lo, hi, true};
    }
    if (!(hi > lo)) hi = lo + 1;
    const double pad = 0.05 * (hi - lo);
    return {lo - (lo == 0 ? 0 : pad), hi + pad, false};
}

std::string svgFrame(const std::string& title, const Axis& x, const Axis& y, const std::string& xl,
                     const std::string& yl) {
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" viewBox=\"0 0 " << kW << ' ' << kH << "\" font-family=\"sans-serif\" font-size=\"11\">"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
      << "<text x=\"" << kW / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">"
      << htmlEscape(title) << "</text>";
    const int x0 = kL, x1 = kW - kR, y0 = kH - kB, y1 = kT;
    s << "<g stroke=\"#888\"><line x1=\"" << x0 << "\" y1=\"" << y0 << "\" x2=\"" << x1
      << "\" y2=\"" << y0 << "\"/>"
      << "<line x1=\"" << x0 << "\" y1=\"" << y0 << "\" x2=\"" << x0 << "\" y2=\"" << y1
      << "\"/></g>";
    auto ticks = [&](const Axis& a, bool isX) {
        std::vector<double> v;
        Ticks lin;
        if (a.log) {
            for (double t = a.lo; t <= a.hi * 1.0001; t *= 10)
                v.push_back(t);
        } else { // round ticks inside the axis
            lin = niceTicks(a.lo, a.hi, 5);
            for (double t : lin.at)
                if (t >= a.lo - 1e-9 * lin.step && t <= a.hi + 1e-9 * lin.step) v.push_back(t);
        }
        for (double t : v) {
            const std::string label = a.log ? num(t, 6) : tickLabel(t, lin.step);
            if (isX) {
                const double px = a.map(t, x0, x1);
                s << "<text x=\"" << px << "\" y=\"" << y0 + 15 << "\" text-anchor=\"middle\">"
                  << label << "</text>";
            } else {
                const double py = a.map(t, y0, y1);
                s << "<line x1=\"" << x0 << "\" x2=\"" << x1 << "\" y1=\"" << py << "\" y2=\"" << py
                  << "\" stroke=\"#eee\"/><text x=\"" << x0 - 5 << "\" y=\"" << py + 4
                  << "\" text-anchor=\"end\">" << label << "</text>";
            }
        }
    };
    if (x.hi > x.lo) ticks(x, true);
    ticks(y, false);
    s << "<text x=\"" << (x0 + x1) / 2 << "\" y=\"" << kH - 8 << "\" text-anchor=\"middle\">"
      << htmlEscape(xl) << "</text>"
      << "<text transform=\"translate(14," << (y0 + y1) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << htmlEscape(yl) << "</text>";
    return s.str();
}

// Lines over x = 0..n-1 (or given xs); one colour per series.
} // namespace

std::string svgLines(const std::string& title, const std::vector<std::vector<double>>& series,
                     const std::vector<std::string>& colours, const std::string& xl,
                     const std::string& yl, const std::vector<double>& xs) {
    double lo = 1e300, hi = -1e300;
    std::size_t n = 0;
    for (const auto& v : series) {
        n = std::max(n, v.size());
        for (double a : v)
            if (std::isfinite(a)) lo = std::min(lo, a), hi = std::max(hi, a);
    }
    if (n == 0) return {};
    const Axis x = xs.empty() ? Axis{0, double(std::max<std::size_t>(1, n - 1)), false}
                              : niceAxis(xs.front(), xs.back(), false);
    const Axis y = niceAxis(lo, hi, false);
    std::ostringstream s;
    s << svgFrame(title, x, y, xl, yl);
    for (std::size_t k = 0; k < series.size(); ++k) {
        s << "<polyline fill=\"none\" stroke=\"" << colours[k % colours.size()]
          << "\" stroke-width=\"1.4\" points=\"";
        for (std::size_t i = 0; i < series[k].size(); ++i)
            s << x.map(xs.empty() ? double(i) : xs[i], kL, kW - kR) << ','
              << y.map(series[k][i], kH - kB, kT) << ' ';
        s << "\"/>";
    }
    s << "</svg>";
    return s.str();
}

// Vertical bars with their values above them.
std::string svgBars(const std::string& title, const std::vector<std::string>& names,
                    const std::vector<double>& values, const std::string& colour,
                    const std::string& yl, bool log) {
    if (values.empty()) return {};
    const double hi = *std::max_element(values.begin(), values.end());
    double lo = 0;
    if (log) {
        lo = 1e300;
        for (double v : values)
            if (v > 0) lo = std::min(lo, v);
        if (lo == 1e300) lo = 1e-3;
    }
    const Axis y = log ? niceAxis(lo, hi, true) : Axis{0, hi > 0 ? hi * 1.12 : 1, false};
    std::ostringstream s;
    s << svgFrame(title, Axis{0, 0, false}, y, "", yl);
    const double slot = double(kW - kL - kR) / double(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        const double x = kL + slot * (double(i) + 0.15), w = slot * 0.7;
        const double top = y.map(std::max(values[i], log ? y.lo : 0.0), kH - kB, kT),
                     base = kH - kB;
        s << "<rect x=\"" << x << "\" y=\"" << top << "\" width=\"" << w << "\" height=\""
          << std::max(0.0, base - top) << "\" fill=\"" << colour << "\"/><text x=\"" << x + w / 2
          << "\" y=\"" << top - 3 << "\" text-anchor=\"middle\">" << num(values[i], 3)
          << "</text><text x=\"" << x + w / 2 << "\" y=\"" << base + 15
          << "\" text-anchor=\"middle\">" << htmlEscape(names[i]) << "</text>";
    }
    s << "</svg>";
    return s.str();
}

} // namespace qmpp::svg
