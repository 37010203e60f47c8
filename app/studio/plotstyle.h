// Plot colours from the widget palette (light and dark themes), shared by every plot page.
#pragma once

class QCustomPlot;
class QCPGraph;
class QPalette;
class QWidget;

#include <QString>
#include <QVector>

#include <map>
#include <utility>

namespace qmpp {
struct MergeResult;
}

class QImage;
class QColor;

namespace studio {
void stylePlot(QCustomPlot* plot, const QPalette& pal);
// Replots in the next event-loop pass if the plot is on screen (so the canvas paints first, and
// a burst of changes replots once); otherwise when it is next shown (a hidden tab's plot costs
// nothing while results stream in).
void replotWhenShown(QCustomPlot* plot);
// A plot with drag and wheel zoom and a context menu to save it as a figure, as every plot
// page uses.
QCustomPlot* makePlot(QWidget* parent);

// The project's palette (qmpp/plotting.h): series in Okabe-Ito order, a fixed colour per method.
QColor seriesColour(int i);
QColor methodColour(const QString& method);
// Puts the legend in a row under the axis rect (it never covers data), `columns` entries wide,
// and shows it. Calling it again keeps it there.
void legendBelow(QCustomPlot* plot, int columns = 4);

// A curve with a band (lo to hi, filled in `colour` at low alpha, out of the legend) and its
// points; returns the curve's graph (the last one added).
QCPGraph* bandCurve(QCustomPlot* plot, const QVector<double>& x, const QVector<double>& y,
                    const QVector<double>& lo, const QVector<double>& hi, const QColor& colour,
                    const QString& name);

// Figures: .svg and .pdf as vectors, .png at `dpi` (the plot's on-screen size in inches at
// 96 dpi, so 300 dpi is 3.125 times the pixels). False with a message naming the file.
bool saveFigure(QCustomPlot* plot, const QString& path, int dpi, QString* error);
// The same for a picture (the canvas): .png at `dpi`, .pdf and .svg with the picture inside
// at its size in inches at `dpi`.
bool saveFigure(const QImage& image, const QString& path, int dpi, QString* error);
// Asks for a file (SVG, PDF or PNG) and a resolution, then saves; the dialog's parent is `w`.
void saveFigureDialog(QWidget* w, const QString& name, QCustomPlot* plot, const QImage* image);
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
