#include "comparepage.h"

#include "overlays.h"
#include "plotstyle.h"
#include "progressjob.h"

#include "qmpp/engine.h"

#include <QComboBox>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QToolBar>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <chrono>

namespace studio {

namespace {

const qmpp::Method kMethods[] = {qmpp::Method::QuickMerge, qmpp::Method::ToMe, qmpp::Method::TopK,
                                 qmpp::Method::Random};
const char* kMethodNames[] = {"QuickMerge++", "ToMe", "Top-K pruning", "Random pruning"};
const QColor kCurve[] = {QColor(59, 81, 139), QColor(33, 144, 141), QColor(220, 90, 50),
                         QColor(140, 100, 200)};

int methodIndex(qmpp::Method m) {
    for (int i = 0; i < 4; ++i)
        if (kMethods[i] == m) return i;
    return 0;
}

} // namespace

ComparePage::ComparePage(QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    // a tool bar: when the page is narrow, what does not fit moves into its overflow menu
    auto* head = new QToolBar(this);
    head->setIconSize(QSize(16, 16));
    head->addWidget(new QLabel(tr("Methods ")));
    for (int i = 0; i < kSlots; ++i) {
        m_method[i] = new QComboBox(this);
        m_method[i]->addItem(tr("(none)"), -1);
        for (int m = 0; m < 4; ++m)
            m_method[i]->addItem(tr(kMethodNames[m]), m);
        m_method[i]->setCurrentIndex(i + 1);
        head->addWidget(m_method[i]);
    }
    auto* run = new QPushButton(tr("Compare"), this);
    run->setToolTip(tr("Merge the open input with each method and the current parameters"));
    auto* sweepButton = new QPushButton(tr("Budget sweep…"), this);
    sweepButton->setToolTip(tr("Each metric against budget (5 % … 100 %) for each method"));
    head->addWidget(run);
    head->addWidget(sweepButton);
    v->addWidget(head);
    connect(run, &QPushButton::clicked, this, &ComparePage::compareRequested);
    connect(sweepButton, &QPushButton::clicked, this, &ComparePage::sweepRequested);

    auto* split = new QSplitter(Qt::Vertical, this);
    auto* grid = new QWidget(split);
    auto* g = new QGridLayout(grid);
    g->setContentsMargins(0, 0, 0, 0);
    for (int i = 0; i < kSlots; ++i) {
        m_title[i] = new QLabel(grid);
        m_canvas[i] = new ImageCanvas(grid);
        m_canvas[i]->setMinimumSize(90, 80);
        // what tells methods apart: their groups, not the (shared) saliency
        m_canvas[i]->setOverlay(Overlay::Saliency, false);
        m_canvas[i]->setOverlay(Overlay::Foreground, false);
        m_canvas[i]->setOverlay(Overlay::Clusters, true);
        g->addWidget(m_title[i], 0, i);
        g->addWidget(m_canvas[i], 1, i);
        g->setColumnStretch(i, 1);
        // zoom and pan follow whichever canvas the user moves
        connect(m_canvas[i], &ImageCanvas::viewChanged, this,
                [this, i](double zoom, QPointF offset) {
                    for (int j = 0; j < kSlots; ++j)
                        if (j != i) m_canvas[j]->setView(zoom, offset);
                });
    }
    g->setRowStretch(1, 1);
    split->addWidget(grid);
    auto* bottom = new QSplitter(Qt::Horizontal, split);
    m_table = new QTableWidget(bottom);
    m_table->verticalHeader()->setVisible(true);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* plotBox = new QWidget(bottom);
    auto* pv = new QVBoxLayout(plotBox);
    pv->setContentsMargins(0, 0, 0, 0);
    m_metric = new QComboBox(plotBox);
    for (const auto& c : qmpp::sweepColumns())
        m_metric->addItem(QString::fromStdString(c.first));
    pv->addWidget(m_metric);
    m_plot = makePlot(plotBox);
    pv->addWidget(m_plot, 1);
    bottom->addWidget(m_table);
    bottom->addWidget(plotBox);
    split->addWidget(bottom);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    v->addWidget(split, 1);
    connect(m_metric, &QComboBox::currentIndexChanged, this, [this] { plotSweep(); });
    stylePlot(m_plot, palette());
}

void ComparePage::changeEvent(QEvent* e) {
    if (e->type() == QEvent::PaletteChange) stylePlot(m_plot, palette());
    QWidget::changeEvent(e);
}

void ComparePage::setInput(const StudioInput& in) {
    m_in = in;
    m_in.views = false;
    m_outputs.clear();
    for (int i = 0; i < kSlots; ++i) {
        m_canvas[i]->setInput(m_in);
        m_title[i]->clear();
    }
    m_table->clear();
    m_table->setRowCount(0);
    m_table->setColumnCount(0);
}

void ComparePage::setMethods(const std::vector<qmpp::Method>& methods) {
    for (int i = 0; i < kSlots; ++i)
        m_method[i]->setCurrentIndex(
            i < int(methods.size()) ? methodIndex(methods[std::size_t(i)]) + 1 : 0);
}

std::vector<qmpp::Method> ComparePage::methods() const {
    std::vector<qmpp::Method> out;
    for (int i = 0; i < kSlots; ++i)
        if (const int m = m_method[i]->currentData().toInt(); m >= 0) out.push_back(kMethods[m]);
    return out;
}

bool ComparePage::compare(const qmpp::MergeParams& base, QString* error) {
    const auto ms = methods();
    if (!m_in.loaded || ms.size() < 2) {
        if (error) *error = tr("Open an input and choose two to four methods");
        return false;
    }
    std::vector<std::shared_ptr<const RunOutput>> outs(ms.size());
    const StudioInput in = m_in;
    QString message;
    const JobEnd end = runWithProgress(
        this, tr("Merging with %1 methods…").arg(ms.size()), qint64(ms.size()),
        [&](const qmpp::Progress& progress) {
            qmpp::MergeSession session;
            for (std::size_t i = 0; i < ms.size(); ++i) {
                auto out = std::make_shared<RunOutput>();
                out->params = base;
                out->params.method = ms[i];
                const auto t0 = std::chrono::steady_clock::now();
                out->result = session.run(in.tokens(), out->params);
                out->wallMs =
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
                makeDisplayImages(in, *out);
                outs[i] = out;
                if (!progress(qmpp::i64(i + 1), qmpp::i64(ms.size()))) throw qmpp::Cancelled();
            }
        },
        &message);
    if (end != JobEnd::Done) {
        if (error) *error = end == JobEnd::Cancelled ? tr("cancelled") : message;
        return false;
    }
    m_outputs = outs;
    for (int i = 0, o = 0; i < kSlots; ++i) {
        const bool used = m_method[i]->currentData().toInt() >= 0;
        m_canvas[i]->setVisible(used);
        m_title[i]->setVisible(used);
        if (!used) continue;
        const auto& r = m_outputs[std::size_t(o)]->result;
        m_canvas[i]->setOutput(m_outputs[std::size_t(o++)]);
        m_title[i]->setText(tr("<b>%1</b> · K = %2 · %3 ms")
                                .arg(m_method[i]->currentText())
                                .arg(r.k)
                                .arg(r.timings.back().ms, 0, 'f', 1));
    }
    // the views start aligned
    for (int i = 1; i < kSlots; ++i)
        m_canvas[i]->setView(m_canvas[0]->zoom(), m_canvas[0]->offset());
    showTable();
    return true;
}

void ComparePage::showTable() {
    struct RowDef {
        QString name;
        double (*get)(const qmpp::MergeResult&);
    };
    static const RowDef rows[] = {
        {tr("K"), [](const qmpp::MergeResult& r) { return double(r.k); }},
        {tr("reconstruction error"),
         [](const qmpp::MergeResult& r) { return r.metrics.reconstructionError; }},
        {tr("mean cosine"), [](const qmpp::MergeResult& r) { return r.metrics.meanCosine; }},
        {tr("norm-mass retention"),
         [](const qmpp::MergeResult& r) { return r.metrics.normMassRetention; }},
        {tr("norm-mass top-K (γ actual)"),
         [](const qmpp::MergeResult& r) { return r.metrics.normMassTopK; }},
        {tr("saliency retention"),
         [](const qmpp::MergeResult& r) { return r.metrics.saliencyRetention; }},
        {tr("group size min"),
         [](const qmpp::MergeResult& r) { return double(r.metrics.groupSizeMin); }},
        {tr("group size median"),
         [](const qmpp::MergeResult& r) { return r.metrics.groupSizeMedian; }},
        {tr("group size max"),
         [](const qmpp::MergeResult& r) { return double(r.metrics.groupSizeMax); }},
        {tr("AR loss"), [](const qmpp::MergeResult& r) { return r.losses.ar; }},
        {tr("fidelity loss"), [](const qmpp::MergeResult& r) { return r.losses.fidelity; }},
        {tr("total loss"), [](const qmpp::MergeResult& r) { return r.losses.total; }},
        {tr("time (ms)"), [](const qmpp::MergeResult& r) { return r.timings.back().ms; }},
    };
    const int n = int(std::size(rows));
    m_table->clear();
    m_table->setRowCount(n);
    m_table->setColumnCount(int(m_outputs.size()));
    QStringList heads;
    for (const auto& o : m_outputs)
        heads << QString::fromStdString(o->result.method);
    m_table->setHorizontalHeaderLabels(heads);
    QStringList names;
    for (int r = 0; r < n; ++r) {
        names << rows[r].name;
        for (int c = 0; c < int(m_outputs.size()); ++c)
            m_table->setItem(r, c,
                             new QTableWidgetItem(QString::number(
                                 rows[r].get(m_outputs[std::size_t(c)]->result), 'g', 5)));
    }
    m_table->setVerticalHeaderLabels(names);
    m_table->resizeColumnsToContents();
}

bool ComparePage::sweep(const qmpp::MergeParams& base, std::vector<double> budgets, int cancelAfter,
                        QString* error) {
    const auto ms = methods();
    if (!m_in.loaded || ms.empty()) {
        if (error) *error = tr("Open an input and choose the methods");
        return false;
    }
    if (budgets.empty()) budgets = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    std::vector<qmpp::SweepRow> rows;
    const StudioInput in = m_in;
    QString message;
    const JobEnd end = runWithProgress(
        this, tr("Budget sweep: %1 methods × %2 budgets…").arg(ms.size()).arg(budgets.size()),
        qint64(ms.size() * budgets.size()),
        [&](const qmpp::Progress& progress) {
            rows = qmpp::runSweep(in.tokens(), base, ms, budgets, progress);
        },
        &message, cancelAfter);
    if (end != JobEnd::Done) {
        if (error)
            *error = end == JobEnd::Cancelled ? tr("sweep cancelled; the previous curves stay")
                                              : message;
        return false;
    }
    m_rows = std::move(rows);
    plotSweep();
    return true;
}

void ComparePage::plotSweep() {
    m_plot->clearGraphs();
    const int col = m_metric->currentIndex();
    if (m_rows.empty() || col < 0) {
        m_plot->replot();
        return;
    }
    const auto& column = qmpp::sweepColumns()[std::size_t(col)];
    std::vector<std::string> order;
    for (const auto& r : m_rows)
        if (std::find(order.begin(), order.end(), r.method) == order.end())
            order.push_back(r.method);
    for (std::size_t m = 0; m < order.size(); ++m) {
        auto* g = m_plot->addGraph();
        QVector<double> x, y;
        for (const auto& r : m_rows)
            if (r.method == order[m]) x << 100 * r.budget, y << column.second(r);
        g->setData(x, y);
        g->setName(QString::fromStdString(order[m]));
        const QColor c = kCurve[m % 4];
        g->setPen(QPen(c, 2));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 6));
    }
    m_plot->xAxis->setLabel(tr("budget (% of tokens kept)"));
    m_plot->yAxis->setLabel(QString::fromStdString(column.first));
    m_plot->legend->setVisible(true);
    m_plot->rescaleAxes();
    m_plot->xAxis->setRange(0, 102);
    m_plot->yAxis->scaleRange(1.1);
    m_plot->replot();
}

} // namespace studio
