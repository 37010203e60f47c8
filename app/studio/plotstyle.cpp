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
        for (long long i = 0; i < n; ++i) x[i] = double(i), y[i] = r.layerEntropy[l * n + i];
        g->setData(x, y);
        const QColor c = QColor::fromHsvF(0.66 * double(l) / double(std::max<long long>(1, r.layers - 1)), 0.8, 0.85);
        if (selected < 0) g->setPen(QPen(c, 1));
        else if (l == selected) g->setPen(QPen(c, 2.5)), top = g;
        else g->setPen(QPen(QColor(150, 150, 150, 110), 1));
        g->setName(QObject::tr("layer %1").arg(l));
    }
    if (top) top->setLayer("overlay"); // the selected layer over the others
    plot->xAxis->setLabel(QObject::tr("token"));
    plot->yAxis->setLabel(QObject::tr("attention entropy H (nats)"));
    plot->legend->setVisible(r.layers > 1 && r.layers <= 12);
    plot->rescaleAxes();
    plot->replot();
}

} // namespace studio
