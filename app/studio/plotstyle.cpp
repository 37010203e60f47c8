#include "plotstyle.h"

#include "qmpp/plotting.h"
#include "qmpp/types.h"

#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QMessageBox>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSvgGenerator>
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

namespace {

// Replots a plot marked stale when it is shown.
class ReplotOnShow : public QObject {
  public:
    using QObject::QObject;
    bool eventFilter(QObject* o, QEvent* e) override {
        if (e->type() == QEvent::Show && o->property(kStale).toBool()) {
            o->setProperty(kStale, false);
            static_cast<QCustomPlot*>(o)->replot();
        }
        return false;
    }
    static constexpr const char* kStale = "qmppReplotStale";
};

} // namespace

void replotWhenShown(QCustomPlot* p) {
    if (p->isVisible()) {
        p->setProperty(ReplotOnShow::kStale, false);
        p->replot(QCustomPlot::rpQueuedReplot); // after the canvas; bursts replot once
        return;
    }
    p->setProperty(ReplotOnShow::kStale, true);
    if (!p->property("qmppReplotFilter").toBool()) { // once per plot
        p->setProperty("qmppReplotFilter", true);
        p->installEventFilter(new ReplotOnShow(p));
    }
}

QCustomPlot* makePlot(QWidget* parent) {
    auto* p = new QCustomPlot(parent);
    // an explicit minimum: a layout would otherwise keep a plot as wide as its axes, labels and
    // (even hidden) legend ask, and squeeze its neighbours instead
    p->setMinimumSize(140, 160);
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    p->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(p, &QWidget::customContextMenuRequested, p, [p](const QPoint& at) {
        QMenu menu(p);
        menu.addAction(QObject::tr("Save plot as (SVG, PDF or PNG)…"), p, [p] {
            saveFigureDialog(
                p, p->yAxis->label().isEmpty() ? QStringLiteral("plot") : p->yAxis->label(), p,
                nullptr);
        });
        menu.addAction(QObject::tr("Reset zoom"), p, [p] {
            p->rescaleAxes();
            p->replot();
        });
        menu.exec(p->mapToGlobal(at));
    });
    return p;
}

QCPGraph* bandCurve(QCustomPlot* plot, const QVector<double>& x, const QVector<double>& y,
                    const QVector<double>& lo, const QVector<double>& hi, const QColor& colour,
                    const QString& name) {
    QCPGraph* gLo = plot->addGraph();
    gLo->setData(x, lo, true);
    gLo->setPen(Qt::NoPen);
    gLo->removeFromLegend();
    QCPGraph* gHi = plot->addGraph();
    gHi->setData(x, hi, true);
    gHi->setPen(Qt::NoPen);
    QColor band = colour;
    band.setAlpha(50);
    gHi->setBrush(band);
    gHi->setChannelFillGraph(gLo);
    gHi->removeFromLegend();
    QCPGraph* g = plot->addGraph();
    g->setData(x, y, true);
    g->setPen(QPen(colour, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, colour, colour, 6));
    g->setName(name);
    return g;
}

QColor seriesColour(int i) {
    return QColor(QRgb(qmpp::seriesRgb(std::size_t(std::max(0, i)))));
}

QColor methodColour(const QString& method) {
    return QColor(QRgb(qmpp::methodRgb(method.toStdString())));
}

void legendBelow(QCustomPlot* plot, int columns) {
    QCPLegend* legend = plot->legend;
    if (legend->layout() == plot->axisRect()->insetLayout()) {
        plot->axisRect()->insetLayout()->take(legend);
        plot->axisRect()->insetLayout()->simplify();
        auto* row = new QCPLayoutGrid;
        plot->plotLayout()->addElement(plot->plotLayout()->rowCount(), 0, row);
        row->setMargins(QMargins(6, 0, 6, 4));
        row->addElement(0, 0, legend);
        plot->plotLayout()->setRowStretchFactor(plot->plotLayout()->rowCount() - 1, 0.001);
    }
    legend->setVisible(true);
    legend->setWrap(columns); // before the fill order, which rearranges by it
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    legend->setBorderPen(Qt::NoPen);
    legend->setBrush(Qt::NoBrush);
    legend->setFont(QFont(plot->font().family(), 8));
    legend->setTextColor(plot->xAxis->labelColor());
}

namespace {

QString suffixOf(const QString& path) {
    return QFileInfo(path).suffix().toLower();
}

} // namespace

bool saveFigure(QCustomPlot* plot, const QString& path, int dpi, QString* error) {
    const int w = std::max(plot->width(), 320), h = std::max(plot->height(), 200);
    const QString ext = suffixOf(path);
    bool ok = false;
    if (ext == QLatin1String("pdf")) {
        ok = plot->savePdf(path, w, h);
    } else if (ext == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(QSize(w, h));
        svg.setViewBox(QRect(0, 0, w, h));
        svg.setResolution(96);
        svg.setTitle(plot->yAxis->label());
        QCPPainter painter;
        ok = painter.begin(&svg);
        if (ok) {
            plot->toPainter(&painter, w, h);
            ok = painter.end();
        }
        ok = ok && QFileInfo(path).size() > 0;
    } else if (ext == QLatin1String("png")) {
        ok = plot->savePng(path, w, h, double(dpi) / 96.0, -1, dpi, QCP::ruDotsPerInch);
    } else {
        if (error) *error = QObject::tr("%1: save as .svg, .pdf or .png").arg(path);
        return false;
    }
    if (!ok && error) *error = QObject::tr("%1: cannot write the figure").arg(path);
    return ok;
}

bool saveFigure(const QImage& image, const QString& path, int dpi, QString* error) {
    const QString ext = suffixOf(path);
    bool ok = false;
    if (ext == QLatin1String("png")) {
        QImage im = image;
        im.setDotsPerMeterX(int(std::lround(dpi / 0.0254)));
        im.setDotsPerMeterY(int(std::lround(dpi / 0.0254)));
        ok = im.save(path, "PNG");
    } else if (ext == QLatin1String("pdf")) {
        QPdfWriter pdf(path);
        pdf.setResolution(dpi);
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        pdf.setPageSize(QPageSize(QSizeF(image.width() * 72.0 / dpi, image.height() * 72.0 / dpi),
                                  QPageSize::Point));
        QPainter painter;
        ok = painter.begin(&pdf);
        if (ok) {
            painter.drawImage(QRect(0, 0, image.width(), image.height()), image);
            ok = painter.end();
        }
    } else if (ext == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(image.size());
        svg.setViewBox(QRect(QPoint(0, 0), image.size()));
        svg.setResolution(dpi);
        QPainter painter;
        ok = painter.begin(&svg);
        if (ok) {
            painter.drawImage(0, 0, image);
            ok = painter.end();
        }
    } else {
        if (error) *error = QObject::tr("%1: save as .svg, .pdf or .png").arg(path);
        return false;
    }
    ok = ok && QFileInfo(path).size() > 0;
    if (!ok && error) *error = QObject::tr("%1: cannot write the figure").arg(path);
    return ok;
}

void saveFigureDialog(QWidget* w, const QString& name, QCustomPlot* plot, const QImage* image) {
    QString filter;
    QString stem = name;
    stem.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9_-]+")), QStringLiteral("-"));
    const QString path = QFileDialog::getSaveFileName(
        w, QObject::tr("Save figure"), stem + QStringLiteral(".svg"),
        QObject::tr("SVG, vector (*.svg);;PDF, vector (*.pdf);;PNG (*.png)"), &filter);
    if (path.isEmpty()) return;
    int dpi = 300;
    if (suffixOf(path) == QLatin1String("png") || image) {
        bool ok = false;
        dpi = QInputDialog::getInt(w, QObject::tr("Resolution"), QObject::tr("Dots per inch:"), 300,
                                   72, 1200, 1, &ok);
        if (!ok) return;
    }
    QString error;
    if (!(plot ? saveFigure(plot, path, dpi, &error) : saveFigure(*image, path, dpi, &error)))
        QMessageBox::warning(w, QObject::tr("Save figure"), error);
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
    legendBelow(plot, 6);
    plot->legend->setVisible(r.layers > 1 && r.layers <= 12);
    plot->rescaleAxes();
    replotWhenShown(plot);
}

void groupedBars(QCustomPlot* plot, const QVector<QString>& kernels,
                 const QVector<QString>& variants,
                 const std::map<std::pair<int, int>, VariantCell>& cells, const QString& yLabel,
                 bool logScale) {
    plot->clearPlottables();
    plot->clearItems();
    auto* group = new QCPBarsGroup(plot);
    double lo = 1e300, hi = 0;
    for (int v = 0; v < variants.size(); ++v) {
        auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
        bars->setName(variants[v]);
        bars->setBrush(seriesColour(v));
        bars->setPen(seriesColour(v).darker(130));
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
    legendBelow(plot, 4);
    replotWhenShown(plot);
}

} // namespace studio
