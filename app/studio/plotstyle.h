// Plot colours from the widget palette (light and dark themes), shared by every plot page.
#pragma once

class QCustomPlot;
class QPalette;
class QWidget;

#include <QString>
#include <QVector>

#include <map>
#include <utility>

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

// Grouped bars: groups along x, one bar per variant in each, whiskers from lo to hi (equal to
// the median: none), a legend of the variants. cells: (group, variant) -> value.
struct VariantCell {
    double median, lo, hi;
};
void groupedBars(QCustomPlot* plot, const QVector<QString>& groups,
                 const QVector<QString>& variants,
                 const std::map<std::pair<int, int>, VariantCell>& cells, const QString& yLabel,
                 bool logScale);
} // namespace studio
