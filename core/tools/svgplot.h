// Small SVG plots for the HTML report (internal to core/tools): line series and bar charts
// with sensible axes, as text to inline into a page.
#pragma once

#include <string>
#include <vector>

namespace qmpp::svg {

// "#rrggbb" from components in [0, 1].
std::string hex(double r, double g, double b);
// A number with `prec` significant digits; "–" when not finite.
std::string num(double v, int prec = 4);

// Series, one colour each, over `xs` (empty: over their index).
std::string svgLines(const std::string& title, const std::vector<std::vector<double>>& series,
                     const std::vector<std::string>& colours, const std::string& xl,
                     const std::string& yl, const std::vector<double>& xs = {});
// One bar per name.
std::string svgBars(const std::string& title, const std::vector<std::string>& names,
                    const std::vector<double>& values, const std::string& colour,
                    const std::string& yl, bool log);

} // namespace qmpp::svg
