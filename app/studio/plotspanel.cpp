#include "plotspanel.h"

#include "selection.h"

#include "plotstyle.h"

#include "qmpp/benchfile.h"

#include <QComboBox>
#include <QEvent>
#include <QFile>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace studio {

namespace {

// Bars with value labels above them.
void barChart(QCustomPlot* plot, const QVector<QString>& names, const QVector<double>& values,
              const QColor& colour, bool logScale, const QString& unit) {
    plot->clearPlottables();
    plot->clearItems();
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    QVector<double> ticks(names.size());
    for (int i = 0; i < names.size(); ++i)
        ticks[i] = i + 1;
    bars->setData(ticks, values);
    bars->setBrush(colour);
    bars->setPen(colour.darker(130));
    bars->setWidth(0.7);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTicks(ticks, names);
    plot->xAxis->setTicker(ticker);
    plot->xAxis->setTickLabelRotation(names.size() > 6 ? 30 : 0);
    plot->xAxis->setRange(0.3, names.size() + 0.7);
    plot->yAxis->setScaleType(logScale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (logScale)
        plot->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
        plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    double lo = 1e300, hi = 0;
    for (double v : values)
        if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi <= 0) lo = 0.001, hi = 1;
    plot->yAxis->setRange(logScale ? lo / 3 : 0, logScale ? hi * 5 : hi * 1.2);
    for (int i = 0; i < names.size(); ++i) {
        auto* label = new QCPItemText(plot);
        label->position->setCoords(i + 1, values[i]);
        label->setPositionAlignment(Qt::AlignBottom | Qt::AlignHCenter);
        label->setText(QString::number(values[i], 'g', 3) + unit);
        label->setFont(QFont(plot->font().family(), 8));
        label->setColor(plot->palette().color(QPalette::WindowText));
    }
    replotWhenShown(plot);
}

void histogram(QCustomPlot* plot, const QVector<double>& centres, const QVector<double>& counts,
               double width, const QColor& colour, const QString& xlabel) {
    plot->clearPlottables();
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setData(centres, counts);
    bars->setWidth(width);
    bars->setBrush(colour);
    bars->setPen(colour.darker(130));
    plot->xAxis->setLabel(xlabel);
    plot->yAxis->setLabel(QObject::tr("count"));
    plot->rescaleAxes();
    plot->yAxis->setRangeLower(0);
    replotWhenShown(plot);
}

// The linked selection's share of each bar, drawn narrower over it (Okabe–Ito orange).
QCPBars* selectionBars(QCustomPlot* plot, double width) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setWidth(width);
    bars->setBrush(QColor(230, 159, 0));
    bars->setPen(QColor(230, 159, 0).darker(140));
    bars->setName(QObject::tr("selected"));
    return bars;
}

} // namespace

void PlotsPanel::setSelection(TokenSelection* selection) {
    m_selection = selection;
    connect(selection, &TokenSelection::changed, this, &PlotsPanel::refreshSelection);
}

void PlotsPanel::selectSaliencyBin(int bin) {
    if (!m_selection || !m_out || bin < 0 || bin >= 20) return;
    m_selection->setTokens(
        TokenSelection::saliencyBin(m_out->result, bin, 20),
        tr("saliency %1–%2").arg(bin / 20.0, 0, 'f', 2).arg((bin + 1) / 20.0, 0, 'f', 2));
}

void PlotsPanel::selectGroupSize(long long size) {
    if (!m_selection || !m_out) return;
    m_selection->setTokens(TokenSelection::groupsOfSize(m_out->result, size),
                           tr("the groups of %1 token(s)").arg(size));
}

QVector<double> PlotsPanel::selectedSaliencyCounts() const {
    QVector<double> c(20, 0.0);
    if (m_selection && m_out)
        for (qmpp::i64 t : m_selection->tokens())
            if (t < qmpp::i64(m_out->result.saliency.size()))
                c[std::min(19, int(m_out->result.saliency[std::size_t(t)] * 20))] += 1;
    return c;
}

QVector<double> PlotsPanel::selectedSizeCounts() const {
    // groups with a selected token, by size, in the order of the size bars
    std::map<long long, double> bySize;
    if (m_out)
        for (long long s : m_out->result.groupSizes)
            bySize[s] += 0;
    if (m_selection && m_out) {
        std::set<qmpp::i64> groups;
        for (qmpp::i64 t : m_selection->tokens())
            if (t < m_out->result.n && m_out->result.labels[std::size_t(t)] >= 0)
                groups.insert(m_out->result.labels[std::size_t(t)]);
        for (qmpp::i64 g : groups)
            bySize[m_out->result.groupSizes[std::size_t(g)]] += 1;
    }
    QVector<double> c;
    for (const auto& [size, n] : bySize)
        c << n;
    return c;
}

void PlotsPanel::refreshSelection() {
    if (!m_out || !m_salSel || !m_sizeSel) return;
    QVector<double> centres(20);
    for (int b = 0; b < 20; ++b)
        centres[b] = (b + 0.5) / 20;
    m_salSel->setData(centres, selectedSaliencyCounts());
    std::map<long long, double> bySize;
    for (long long s : m_out->result.groupSizes)
        bySize[s] += 0;
    QVector<double> sx;
    for (const auto& [size, n] : bySize)
        sx << double(size);
    m_sizeSel->setData(sx, selectedSizeCounts());
    replotWhenShown(m_saliency);
    replotWhenShown(m_sizes);
}

PlotsPanel::PlotsPanel(QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    v->setContentsMargins(2, 2, 2, 2);
    m_tabs = new QTabWidget(this);
    v->addWidget(m_tabs);

    auto* timingsPage = new QWidget(m_tabs);
    auto* tv = new QVBoxLayout(timingsPage);
    auto* row = new QHBoxLayout;
    m_source = new QComboBox(timingsPage);
    m_source->addItem(tr("Last run (per stage)"));
    m_benchN = new QComboBox(timingsPage);
    m_benchN->setVisible(false);
    m_timingNote = new QLabel(timingsPage);
    row->addWidget(new QLabel(tr("Timings of"), timingsPage));
    row->addWidget(m_source);
    row->addWidget(m_benchN);
    row->addWidget(m_timingNote, 1);
    tv->addLayout(row);
    m_timings = makePlot(timingsPage);
    tv->addWidget(m_timings, 1);
    m_tabs->addTab(timingsPage, tr("Timings"));

    m_saliency = makePlot(m_tabs);
    m_tabs->addTab(m_saliency, tr("Saliency"));
    m_sizes = makePlot(m_tabs);
    m_tabs->addTab(m_sizes, tr("Group sizes"));
    m_entropy = makePlot(m_tabs);
    m_tabs->addTab(m_entropy, tr("Entropy per layer"));
    m_table = new QTableView(m_tabs);
    m_model = new MetricsModel(m_table);
    m_table->setModel(m_model);
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->setVisible(false);
    m_tabs->addTab(m_table, tr("Metrics"));

    connect(m_source, &QComboBox::currentIndexChanged, this, [this](int i) {
        m_benchN->setVisible(i > 0);
        if (i == 0)
            showRunTimings();
        else
            showBenchTimings();
    });
    connect(m_benchN, &QComboBox::currentIndexChanged, this, &PlotsPanel::showBenchTimings);
    connect(m_saliency, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        const double x = m_saliency->xAxis->pixelToCoord(e->position().x());
        if (e->button() == Qt::LeftButton && x >= 0 && x < 1) selectSaliencyBin(int(x * 20));
    });
    connect(m_sizes, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        const long long s = std::llround(m_sizes->xAxis->pixelToCoord(e->position().x()));
        if (e->button() == Qt::LeftButton && m_out &&
            std::count(m_out->result.groupSizes.begin(), m_out->result.groupSizes.end(), s) > 0)
            selectGroupSize(s);
    });
    m_saliency->setToolTip(tr("Click a bar: select its tokens everywhere"));
    m_sizes->setToolTip(tr("Click a bar: select the groups of that size everywhere"));
    restyle();
}

void PlotsPanel::setOutput(std::shared_ptr<const RunOutput> out) {
    m_out = std::move(out);
    m_model->setOutput(m_out);
    if (!m_out) return;
    const auto& r = m_out->result;
    if (m_source->currentIndex() == 0) showRunTimings();
    // saliency histogram, 20 bins over [0, 1]
    QVector<double> centres(20), counts(20, 0);
    for (int b = 0; b < 20; ++b)
        centres[b] = (b + 0.5) / 20;
    for (float s : r.saliency)
        counts[std::min(19, int(s * 20))] += 1;
    histogram(m_saliency, centres, counts, 0.045, QColor(33, 144, 141), tr("saliency s"));
    m_salSel = selectionBars(m_saliency, 0.03);
    // group sizes: one bar per size
    std::map<long long, double> bySize;
    for (long long s : r.groupSizes)
        bySize[s] += 1;
    QVector<double> sx, sy;
    for (const auto& [s, c] : bySize)
        sx << double(s), sy << c;
    histogram(m_sizes, sx, sy, 0.8, QColor(92, 200, 99), tr("group size (tokens)"));
    m_sizeSel = selectionBars(m_sizes, 0.5);
    refreshSelection();
    QSharedPointer<QCPAxisTickerFixed> whole(new QCPAxisTickerFixed);
    whole->setTickStep(1.0);
    whole->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_sizes->xAxis->setTicker(whole);
    replotWhenShown(m_sizes);
    // entropy per layer
    plotLayerEntropy(m_entropy, r);
}

void PlotsPanel::showRunTimings() {
    if (!m_out) return;
    m_timings->legend->setVisible(false);
    QVector<QString> names;
    QVector<double> ms;
    for (const auto& t : m_out->result.timings)
        if (t.stage != "total")
            names << QString::fromStdString(t.stage), ms << std::max(t.ms, 1e-4);
    names << tr("total");
    ms << std::max(m_out->result.timings.back().ms, 1e-4);
    m_timings->yAxis->setLabel(tr("ms (log)"));
    barChart(m_timings, names, ms, QColor(59, 81, 139), true, "");
    m_barCount = int(names.size());
    m_timingNote->setText(tr("%1 · %2").arg(QString::fromStdString(m_out->result.backend),
                                            QString::fromStdString(m_out->result.device)));
}

void PlotsPanel::loadBench(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        throw std::runtime_error(path.toStdString() + ": cannot be opened");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f.readAll().toStdString());
    } catch (const std::exception& e) {
        throw std::runtime_error(path.toStdString() + ": not JSON (" + e.what() + ")");
    }
    const QString device =
        QString::fromStdString(qmpp::parseBenchJson(j, path.toStdString()).device); // checks it
    setBench(j, tr("File: %1").arg(device.isEmpty() ? path : device));
}

void PlotsPanel::setBench(const nlohmann::json& j, const QString& label) {
    m_bench = j;
    std::set<long long> sizes;
    for (const auto& r : j["results"])
        sizes.insert(r["N"].get<long long>());
    {
        const QSignalBlocker b(m_benchN);
        m_benchN->clear();
        for (long long n : sizes)
            m_benchN->addItem(QStringLiteral("N = %1").arg(n), qlonglong(n));
    }
    if (m_source->count() > 1)
        m_source->setItemText(1, label);
    else
        m_source->addItem(label);
    m_source->setCurrentIndex(1);
    showBenchTimings();
}

void PlotsPanel::showBenchTimings() {
    if (m_bench.is_null() || m_benchN->count() == 0) return;
    const long long n = m_benchN->currentData().toLongLong();
    // kernels along x, one bar per variant (version x precision) in each group, min-max whiskers
    QVector<QString> kernels, variants;
    std::map<std::pair<int, int>, VariantCell> cells;
    for (const auto& r : m_bench["results"]) {
        if (r["N"].get<long long>() != n) continue;
        if (r.value("verified", true) == false)
            continue; // never show a variant that failed its check
        QString kernel = QString::fromStdString(r["kernel"].get<std::string>());
        if (r.value("L", 1) != 1) kernel += QStringLiteral(" L%1").arg(r.value("L", 1));
        const QString variant = QString::fromStdString(r.value("version", "")) + " " +
                                QString::fromStdString(r.value("precision", ""));
        if (!kernels.contains(kernel)) kernels << kernel;
        if (!variants.contains(variant)) variants << variant;
        const double med = std::max(r["median"].get<double>(), 1e-5);
        cells[{int(kernels.indexOf(kernel)), int(variants.indexOf(variant))}] =
            VariantCell{med, r.value("min", med), r.value("max", med)};
    }
    groupedBars(m_timings, kernels, variants, cells, tr("median ms (log), whiskers min–max"), true);
    m_barCount = int(cells.size());
    m_variantCount = int(variants.size());
    m_timingNote->setText(tr("%1 kernels × %2 variants").arg(kernels.size()).arg(variants.size()));
}

void PlotsPanel::restyle() {
    for (QCustomPlot* p : {m_timings, m_saliency, m_sizes, m_entropy})
        stylePlot(p, palette());
}

void PlotsPanel::changeEvent(QEvent* e) {
    if (e->type() == QEvent::PaletteChange) restyle();
    QWidget::changeEvent(e);
}

} // namespace studio
