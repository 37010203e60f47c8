// Plot colours from the widget palette (light and dark themes), shared by every plot page.
#pragma once

class QCustomPlot;
class QPalette;
class QWidget;

namespace qmpp {
struct MergeResult;
}

namespace studio {
void stylePlot(QCustomPlot* plot, const QPalette& pal);
// A plot with drag and wheel zoom, as every plot page uses.
QCustomPlot* makePlot(QWidget* parent);
// Each layer's entropy over the tokens, one curve per layer; `selected` >= 0 draws that layer
// bold over the others in grey.
void plotLayerEntropy(QCustomPlot* plot, const qmpp::MergeResult& r, int selected = -1);
}
