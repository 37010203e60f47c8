#include "plotstyle.h"

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

} // namespace studio
