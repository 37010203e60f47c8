// The Profiler page's plots: bars per kernel and variant, speedups, the roofline and the size
// sweep (the table and the files are in profilerpage.cpp).
#include "plotstyle.h"
#include "profilerpage.h"

#include <QComboBox>
#include <qcustomplot.h>

#include <cmath>
#include <map>
#include <set>

namespace studio {

void ProfilerPage::refreshPlots() {
    plotBars();
    plotSpeedups();
    plotRoofline();
    plotSweep();
}

void ProfilerPage::plotBars() {
    const qmpp::BenchFile* f = currentFile();
    if (!f) {
        m_bars->clearPlottables();
        m_bars->replot();
        return;
    }
    const qlonglong n = m_size->currentData().toLongLong();
    QVector<QString> kernels, variants;
    std::map<std::pair<int, int>, VariantCell> cells;
    for (const auto& r : f->rows) {
        const auto& t = r.t;
        if (t.n != n || !t.verified) continue;
        const QString k = kernelLabel(t), v = variantOf(t);
        if (!kernels.contains(k)) kernels << k;
        if (!variants.contains(v)) variants << v;
        cells[{int(kernels.indexOf(k)), int(variants.indexOf(v))}] = {t.median, t.min, t.max};
    }
    groupedBars(m_bars, kernels, variants, cells, tr("median ms (log), whiskers min–max"), true);
}

void ProfilerPage::plotSpeedups() {
    const qmpp::BenchFile* file = currentFile();
    if (!file) {
        m_speedup->clearPlottables();
        m_speedup->replot();
        return;
    }
    const auto& f = *file;
    const qlonglong n = m_size->currentData().toLongLong();
    QVector<QString> kernels, variants;
    std::map<std::pair<int, int>, VariantCell> cells;
    auto add = [&](const QString& k, const QString& v, double x) {
        if (!(x > 0)) return;
        if (!kernels.contains(k)) kernels << k;
        if (!variants.contains(v)) variants << v;
        cells[{int(kernels.indexOf(k)), int(variants.indexOf(v))}] = {x, x, x};
    };
    for (std::size_t i = 0; i < f.rows.size(); ++i) {
        const auto& t = f.rows[i].t;
        if (t.n != n || !t.verified) continue;
        add(kernelLabel(t),
            tr("%1 ÷ basic, %2")
                .arg(QString::fromStdString(t.version), QString::fromStdString(t.precision)),
            qmpp::speedupOverBasic(f, i));
        add(kernelLabel(t), tr("FP16 ÷ FP32, %1").arg(QString::fromStdString(t.version)),
            qmpp::speedupFp16(f, i));
    }
    groupedBars(m_speedup, kernels, variants, cells, tr("speed-up (×; above 1: faster)"), false);
    auto* one = new QCPItemStraightLine(m_speedup);
    one->point1->setCoords(0, 1);
    one->point2->setCoords(1, 1);
    one->setPen(QPen(QColor(200, 60, 50), 1, Qt::DashLine));
    m_speedup->replot();
}

void ProfilerPage::plotRoofline() {
    QCustomPlot* p = m_roofline;
    p->clearGraphs();
    p->clearItems();
    const qmpp::BenchFile* file = currentFile();
    if (!file) {
        p->replot();
        return;
    }
    const auto& f = *file;
    double lo = 1e300, hi = 0;
    std::map<QString, QCPGraph*> byVariant;
    int colour = 0;
    for (const auto& r : f.rows) {
        const auto& t = r.t;
        const double ai = qmpp::arithmeticIntensity(t);
        if (!t.verified || ai <= 0 || t.tflops <= 0) continue;
        const QString v = variantOf(t);
        QCPGraph*& g = byVariant[v];
        if (!g) {
            g = p->addGraph();
            g->setLineStyle(QCPGraph::lsNone);
            const QColor c = seriesColour(colour++);
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c, c, 7));
            g->setName(v);
        }
        g->addData(ai, t.tflops);
        lo = std::min(lo, ai);
        hi = std::max(hi, ai);
    }
    const auto& c = f.ceilings;
    if (c.copyGbps > 0 && (lo < hi || hi > 0)) {
        lo = std::min(lo, 0.1);
        hi = std::max(hi * 4, 1e4);
        auto roof = [&](double peak, const QString& name, const QColor& colour) {
            if (peak <= 0) return;
            auto* g = p->addGraph();
            QVector<double> x, y;
            for (int i = 0; i <= 200; ++i) {
                const double ai = lo * std::pow(hi / lo, i / 200.0);
                x << ai;
                y << qmpp::roofline(ai, peak, c.copyGbps);
            }
            g->setData(x, y);
            g->setPen(QPen(colour, 2, Qt::DashLine));
            g->setName(name);
        };
        roof(c.fp16Tflops,
             tr("roof: FP16 GEMM %1 TFLOP/s, %2 GB/s")
                 .arg(c.fp16Tflops, 0, 'f', 0)
                 .arg(c.copyGbps, 0, 'f', 0),
             QColor(200, 60, 50));
        roof(c.fp32Tflops, tr("roof: FP32 GEMM %1 TFLOP/s").arg(c.fp32Tflops, 0, 'f', 1),
             QColor(90, 90, 90));
    }
    for (QCPAxis* a : {p->xAxis, p->yAxis}) {
        a->setScaleType(QCPAxis::stLogarithmic);
        a->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    }
    p->xAxis->setLabel(tr("arithmetic intensity (flop per byte)"));
    p->yAxis->setLabel(tr("achieved TFLOP/s"));
    legendBelow(p, 3);
    p->rescaleAxes();
    p->xAxis->scaleRange(1.3);
    p->yAxis->scaleRange(1.5);
    if (c.copyGbps <= 0) {
        auto* note = new QCPItemText(p);
        note->position->setType(QCPItemPosition::ptAxisRectRatio);
        note->position->setCoords(0.5, 0.05);
        note->setText(tr("this file has no measured ceilings (a CPU run): points only"));
    }
    p->replot();
}

void ProfilerPage::plotSweep() {
    QCustomPlot* p = m_sweep;
    p->clearGraphs();
    const std::string kernel = m_kernel->currentText().toStdString();
    int colour = 0;
    for (const auto& f : m_files) {
        std::map<QString, std::map<qmpp::i64, double>> series; // variant -> N -> median
        for (const auto& r : f.rows)
            if (r.t.kernel == kernel && r.t.verified)
                series[variantOf(r.t) + (r.t.l != 1 ? QStringLiteral(" L%1").arg(r.t.l)
                                                    : QString())][r.t.n] = r.t.median;
        for (const auto& [name, points] : series) {
            auto* g = p->addGraph();
            QVector<double> x, y;
            for (const auto& [n, ms] : points)
                x << double(n), y << ms;
            g->setData(x, y);
            const QColor c = seriesColour(colour++);
            g->setPen(QPen(c, 2));
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 6));
            g->setName(m_files.size() > 1
                           ? QString::fromStdString(f.device.empty() ? f.name : f.device) + ": " +
                                 name
                           : name);
        }
    }
    for (QCPAxis* a : {p->xAxis, p->yAxis}) {
        a->setScaleType(QCPAxis::stLogarithmic);
        a->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    }
    p->xAxis->setLabel(tr("tokens N (log)"));
    p->yAxis->setLabel(tr("%1: median ms (log)").arg(m_kernel->currentText()));
    legendBelow(p, 3);
    p->legend->setVisible(p->graphCount() > 0);
    p->rescaleAxes();
    p->xAxis->scaleRange(1.4);
    p->yAxis->scaleRange(2.0);
    p->replot();
}

} // namespace studio
