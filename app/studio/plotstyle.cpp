#include "plotstyle.h"

#include "qmpp/types.h"

#include <qcustomplot.h>

namespace studio {

void stylePlot(QCustomPlot* p, const QPalette& pal) {
    p->setBackground(pal.color(QPalette::Base));
    for (QCPAxis* a : {p->xAxis, p->yAxis}) {
        a->setBasePen(QPen(pal.color(QPalette::WindowText)));
        a->setTickPen(QPen(pal.color(QPalette::WindowText)));
        a->setSubTickPen(QPen(pal.color(QPalette::WindowText)));
        a->setTickLabelColor(pal.color(QPalette::WindowText));
        a->setLabelColor(pal.color(QPalette::WindowText));
    }
    p->replot();
}

QCustomPlot* makePlot(QWidget* parent) {
    auto* p = new QCustomPlot(parent);
    p->setMinimumHeight(160);
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    return p;
}

void plotLayerEntropy(QCustomPlot* plot, const qmpp::MergeResult& r, int selected) {
    plot->clearGraphs();
    const long long n = r.n;
    QCPGraph* top = nullptr;
    for (long long l = 0; l < r.layers; ++l) {
        auto* g = plot->addGraph();
        QVector<double> x(n), y(n);
        for (long long i = 0; i < n; ++i)
            x[i] = double(i), y[i] = r.layerEntropy[l * n + i];
        g->setData(x, y);
        const QColor c = QColor::fromHsvF(
            0.66 * double(l) / double(std::max<long long>(1, r.layers - 1)), 0.8, 0.85);
        if (selected < 0)
            g->setPen(QPen(c, 1));
        else if (l == selected)
            g->setPen(QPen(c, 2.5)), top = g;
        else
            g->setPen(QPen(QColor(150, 150, 150, 110), 1));
        g->setName(QObject::tr("layer %1").arg(l));
    }
    if (top) top->setLayer("overlay"); // the selected layer over the others
    plot->xAxis->setLabel(QObject::tr("token"));
    plot->yAxis->setLabel(QObject::tr("attention entropy H (nats)"));
    plot->legend->setVisible(r.layers > 1 && r.layers <= 12);
    plot->rescaleAxes();
    plot->replot();
}

void groupedBars(QCustomPlot* plot, const QVector<QString>& kernels,
                 const QVector<QString>& variants,
                 const std::map<std::pair<int, int>, VariantCell>& cells, const QString& yLabel,
                 bool logScale) {
    plot->clearPlottables();
    plot->clearItems();
    auto* group = new QCPBarsGroup(plot);
    const QColor colours[] = {QColor(59, 81, 139),  QColor(33, 144, 141), QColor(92, 200, 99),
                              QColor(253, 180, 37), QColor(180, 60, 120), QColor(120, 120, 120),
                              QColor(220, 90, 50),  QColor(140, 100, 200)};
    double lo = 1e300, hi = 0;
    for (int v = 0; v < variants.size(); ++v) {
        auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
        bars->setName(variants[v]);
        bars->setBrush(colours[v % 8]);
        bars->setPen(colours[v % 8].darker(130));
        bars->setWidth(0.8 / double(std::max<qsizetype>(1, variants.size())));
        bars->setBarsGroup(group);
        auto* whiskers = new QCPErrorBars(plot->xAxis, plot->yAxis);
        whiskers->removeFromLegend();
        whiskers->setDataPlottable(bars);
        QVector<double> x, y, minus, plus;
        for (int k = 0; k < kernels.size(); ++k) {
            const auto it = cells.find({k, v});
            if (it == cells.end()) continue;
            x << k + 1;
            y << it->second.median;
            minus << std::max(0.0, it->second.median - it->second.lo);
            plus << std::max(0.0, it->second.hi - it->second.median);
            lo = std::min(lo, it->second.lo > 0 ? it->second.lo : it->second.median);
            hi = std::max(hi, it->second.hi);
        }
        bars->setData(x, y);
        whiskers->setData(minus, plus);
    }
    QVector<double> ticks;
    for (int k = 0; k < kernels.size(); ++k)
        ticks << k + 1;
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTicks(ticks, kernels);
    plot->xAxis->setTicker(ticker);
    plot->xAxis->setTickLabelRotation(kernels.size() > 6 ? 30 : 0);
    plot->xAxis->setRange(0.4, double(kernels.size()) + 0.6);
    plot->yAxis->setScaleType(logScale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (logScale)
        plot->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
        plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot->yAxis->setLabel(yLabel);
    if (hi > 0) plot->yAxis->setRange(logScale ? lo / 3 : 0, logScale ? hi * 3 : hi * 1.15);
    plot->legend->setVisible(true);
    plot->legend->setFont(QFont(plot->font().family(), 7));
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot->legend->setWrap(4);
    plot->legend->setBrush(QColor(255, 255, 255, 200));
    plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot->replot();
}

} // namespace studio
