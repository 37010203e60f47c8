// Plot colours from the widget palette (light and dark themes), shared by every plot page.
#pragma once

class QCustomPlot;
class QPalette;

namespace studio {
void stylePlot(QCustomPlot* plot, const QPalette& pal);
}
