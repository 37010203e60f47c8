#include "qmpp/plotting.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qmpp {

Ticks niceTicks(double lo, double hi, int target) {
    Ticks t;
    if (!std::isfinite(lo) || !std::isfinite(hi)) return t;
    if (lo > hi) std::swap(lo, hi);
    if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) { // one value: a unit around it
        const double m = lo == 0 ? 1 : std::pow(10.0, std::floor(std::log10(std::abs(lo))));
        lo -= m / 2, hi += m / 2;
    }
    const double raw = (hi - lo) / double(std::max(2, target));
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double r = raw / mag;
    t.step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    const double first = std::floor(lo / t.step + 1e-9), last = std::ceil(hi / t.step - 1e-9);
    t.lo = first * t.step, t.hi = last * t.step;
    for (double k = first; k <= last + 0.5; k += 1) {
        const double v = k * t.step;
        t.at.push_back(std::abs(v) < 1e-9 * t.step ? 0.0 : v);
    }
    return t;
}

std::string tickLabel(double value, double step) {
    char buf[48];
    step = std::abs(step);
    if (std::abs(value) < 1e-9 * std::max(step, 1e-300)) value = 0;
    if (step >= 1e4 || (step > 0 && step < 1e-4)) {
        std::snprintf(buf, sizeof buf, "%.3g", value);
        return buf;
    }
    const int decimals = step >= 1 ? 0 : std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    std::string s = buf;
    if (s == "-0" || (s.rfind("-0.", 0) == 0 && s.find_first_not_of("-0.") == std::string::npos))
        s.erase(0, 1);
    return s;
}

std::uint32_t seriesRgb(std::size_t i) {
    static const std::uint32_t kOkabeIto[] = {0x0072B2, 0xE69F00, 0x009E73, 0xD55E00,
                                              0xCC79A7, 0x56B4E9, 0xF0E442, 0x000000};
    return kOkabeIto[i % 8];
}

std::uint32_t methodRgb(const std::string& method) {
    static const char* kKnown[] = {"quickmerge", "tome", "topk", "random"};
    for (std::size_t i = 0; i < 4; ++i)
        if (method == kKnown[i]) return seriesRgb(i);
    std::uint32_t h = 2166136261u; // FNV-1a: the same colour on every machine
    for (unsigned char c : method)
        h = (h ^ c) * 16777619u;
    return seriesRgb(4 + h % 4);
}

} // namespace qmpp
