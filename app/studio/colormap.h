// The perceptual colormap (viridis) shared by the canvas and the plots' colour scales, built on
// QCustomPlot's QCPColorGradient, and distinct colours for groups.
#pragma once

#include <QColor>
#include <QRgb>

class QCPColorGradient;

namespace studio {

const QCPColorGradient& viridis();
// v in [0, 1] (clamped) -> colour.
QRgb viridisAt(double v);
// A distinct colour per group: hues spaced by the golden ratio.
QColor groupColour(long long g);

} // namespace studio
