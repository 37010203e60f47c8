#include "comparepage.h"
#include "textformat.h"

#include "overlays.h"
#include "plotstyle.h"

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

int methodIndex(qmpp::Method m) {
    for (int i = 0; i < 4; ++i)
        if (kMethods[i] == m) return i;
    return 0;
}

} // namespace

ComparePage::ComparePage(JobOwner* jobs, QWidget* parent) : QWidget(parent), m_jobs(jobs) {
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
    m_stale = new QLabel(this); // shown while the comparison does not match the parameters
    m_stale->setWordWrap(true);
    m_stale->setStyleSheet("background: #fff3c4; color: #5a4500; padding: 4px");
    m_stale->hide();
    v->addWidget(m_stale);
    connect(run, &QPushButton::clicked, this, &ComparePage::compareRequested);
    connect(sweepButton, &QPushButton::clicked, this, &ComparePage::sweepRequested);

    auto* split = new QSplitter(Qt::Vertical, this);
    auto* grid = new QWidget(split);
    auto* g = new QGridLayout(grid);
    g->setContentsMargins(0, 0, 0, 0);
    for (int i = 0; i < kSlots; ++i) {
        m_title[i] = new QLabel(grid);
        // a long title elides instead of widening the window past the screen
        m_title[i]->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
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
    m_jobs->supersede(QStringLiteral("compare"));
    setStale(false);
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

quint64 ComparePage::compare(const qmpp::MergeParams& base, QString* error) {
    const auto ms = methods();
    if (!m_in.loaded || ms.size() < 2) {
        if (error) *error = tr("Open an input and choose two to four methods");
        return 0;
    }
    const StudioInput in = m_in;
    const quint64 id = m_jobs->start(
        QStringLiteral("compare"), tr("Comparing %1 methods").arg(ms.size()),
        [this, in, base, ms](JobContext& c) -> JobOwner::Then {
            std::vector<std::shared_ptr<const RunOutput>> outs;
            qmpp::MergeSession session;
            for (std::size_t i = 0; i < ms.size(); ++i) {
                auto out = std::make_shared<RunOutput>();
                out->params = base;
                out->params.method = ms[i];
                const auto t0 = std::chrono::steady_clock::now();
                out->result = session.run(
                    in.tokens(), out->params); // the job\'s StopScope stops it when superseded
                out->wallMs =
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
                makeDisplayImages(in, *out);
                outs.push_back(out);
                c.progress(qint64(i + 1), qint64(ms.size()));
                c.check();
            }
            return [this, outs, base] { showOutputs(outs, base); };
        });
    return id;
}

void ComparePage::showOutputs(const std::vector<std::shared_ptr<const RunOutput>>& outs,
                              const qmpp::MergeParams& base) {
    m_outputs = outs;
    m_compared = base;
    setStale(false);
    for (int i = 0, o = 0; i < kSlots; ++i) {
        const bool used = m_method[i]->currentData().toInt() >= 0 && o < int(m_outputs.size());
        m_canvas[i]->setVisible(used);
        m_title[i]->setVisible(used);
        if (!used) continue;
        const auto& r = m_outputs[std::size_t(o)]->result;
        m_canvas[i]->setOutput(m_outputs[std::size_t(o++)]);
        m_title[i]->setText(tr("<b>%1</b> · K = %2 · %3")
                                .arg(m_method[i]->currentText())
                                .arg(r.k)
                                .arg(formatDuration(r.timings.back().ms)));
        m_title[i]->setToolTip(m_title[i]->text());
    }
    // the views start aligned
    for (int i = 1; i < kSlots; ++i)
        m_canvas[i]->setView(m_canvas[0]->zoom(), m_canvas[0]->offset());
    m_modelCells.clear();
    showTable();
    measureInModel();
}

void ComparePage::setModel(std::shared_ptr<const qmpp::VitModel> model,
                           std::shared_ptr<const qmpp::EvalItems> set, qmpp::i64 atBlock) {
    const qmpp::i64 limit = m_modelLimit;
    m_model = std::move(model);
    m_atBlock = atBlock;
    m_modelSet.reset();
    if (set && set->count > limit) { // the first `limit` images
        auto sub = std::make_shared<qmpp::EvalItems>();
        const qmpp::i64 each = qmpp::i64(set->pixels.size()) / set->count;
        sub->count = limit; // the first images only, without copying the rest first
        sub->pixels.assign(set->pixels.begin(), set->pixels.begin() + limit * each);
        sub->labels.assign(set->labels.begin(), set->labels.begin() + limit);
        sub->names.assign(set->names.begin(), set->names.begin() + limit);
        sub->source = set->source;
        m_modelSet = sub;
    } else {
        m_modelSet = std::move(set);
    }
}

void ComparePage::measureInModel() {
    if (!m_model || !m_modelSet || m_modelSet->count == 0 || m_outputs.empty()) return;
    const qmpp::i64 depth = config(*m_model).depth;
    std::vector<qmpp::HookParams> hps;
    for (const auto& o : m_outputs) {
        const qmpp::MergeResult& r = o->result;
        qmpp::HookParams hp;
        qmpp::parse(r.method, hp.method); // the one-shot methods have namesakes in the model
        const double n = double(std::max<std::size_t>(r.labels.size(), 1));
        hp.schedule = qmpp::budgetSchedule(std::clamp(double(r.k) / n, 1e-6, 1.0),
                                           std::clamp<qmpp::i64>(m_atBlock, 0, depth - 1));
        hp.temperature = o->params.temperature;
        hp.epsilon = o->params.epsilon;
        hp.seed = o->params.seed;
        hps.push_back(hp);
    }
    auto model = m_model;
    auto set = m_modelSet;
    m_modelJob = m_jobs->start(
        QStringLiteral("comparemodel"), tr("Compare: %1 methods inside the model").arg(hps.size()),
        [this, model, set, hps](JobContext& c) -> JobOwner::Then {
            auto cells = std::make_shared<std::vector<ModelCell>>();
            const qmpp::EvalRun* plain = nullptr;
            qmpp::EvalRun first;
            for (std::size_t i = 0; i < hps.size(); ++i) {
                ModelCell cell;
                cell.hp = hps[i];
                cell.items = set->count;
                if (hps[i].method != qmpp::ModelMethod::None) {
                    qmpp::EvalRun run =
                        qmpp::evaluate(*model, *set, hps[i], {hps[i].seed}, c.reporter(), plain);
                    cell.measures = run.measures[0];
                    if (!plain) {
                        first = std::move(run);
                        plain = &first;
                    }
                }
                cells->push_back(cell);
                c.check();
            }
            return [this, cells] {
                m_modelCells = std::move(*cells);
                showTable();
            };
        });
}

void ComparePage::paramsChanged(const qmpp::MergeParams& now) {
    if (m_outputs.empty()) return;
    qmpp::MergeParams a = m_compared, b = now;
    a.method = b.method = qmpp::Method::QuickMerge; // the page chooses the methods
    const bool same = a.k == b.k && a.budget == b.budget && a.temperature == b.temperature &&
                      a.epsilon == b.epsilon && a.gamma == b.gamma && a.alpha == b.alpha &&
                      a.layers == b.layers && a.refine == b.refine && a.seed == b.seed &&
                      a.cluster == b.cluster && a.backend == b.backend &&
                      a.precision == b.precision;
    if (same) return;
    if (isVisible()) { // on screen: refresh (a newer change supersedes this one)
        compare(now);
        setStale(true, tr("Updating to the new parameters…"));
    } else {
        setStale(true, tr("Parameters changed since this comparison (K = %1 then, %2 now). "
                          "Compare again to update.")
                           .arg(m_outputs.front()->result.k)
                           .arg(now.k));
    }
}

void ComparePage::setStale(bool stale, const QString& why) {
    m_stale->setVisible(stale);
    m_stale->setText(why);
    for (int i = 0; i < kSlots; ++i)
        m_canvas[i]->setEnabled(!stale);
    m_table->setEnabled(!stale);
}

bool ComparePage::stale() const {
    return !m_stale->isHidden();
}

void ComparePage::showTable() {
    struct RowDef {
        QString name;
        double (*get)(const qmpp::MergeResult&);
    };
    static const RowDef rows[] = {
        {tr("K"), [](const qmpp::MergeResult& r) { return double(r.k); }},
        {tr("recon. error, dropped = 0"),
         [](const qmpp::MergeResult& r) { return r.metrics.reconstructionError; }},
        {tr("recon. error, nearest kept"),
         [](const qmpp::MergeResult& r) { return r.metrics.reconstructionErrorNearestKept; }},
        {tr("mean cosine, dropped = 0"),
         [](const qmpp::MergeResult& r) { return r.metrics.meanCosine; }},
        {tr("mean cosine, nearest kept"),
         [](const qmpp::MergeResult& r) { return r.metrics.meanCosineNearestKept; }},
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
    // the model column: each method inside the model at this budget
    if (m_modelCells.size() == m_outputs.size() && !m_modelCells.empty()) {
        const int at = m_table->rowCount();
        m_table->setRowCount(at + 2);
        names << tr("model agreement") << tr("model KL");
        for (int c = 0; c < int(m_modelCells.size()); ++c) {
            const ModelCell& cell = m_modelCells[std::size_t(c)];
            const qmpp::Proportion& a = cell.measures.agreement;
            const bool none = cell.hp.method == qmpp::ModelMethod::None;
            m_table->setItem(at, c,
                             new QTableWidgetItem(none ? QStringLiteral("–")
                                                       : QStringLiteral("%1 % [%2, %3]")
                                                             .arg(100 * a.value, 0, 'f', 1)
                                                             .arg(100 * a.lo, 0, 'f', 1)
                                                             .arg(100 * a.hi, 0, 'f', 1)));
            m_table->setItem(
                at + 1, c,
                new QTableWidgetItem(none ? QStringLiteral("–")
                                          : QString::number(cell.measures.klMean, 'g', 4)));
        }
    }
    m_table->setVerticalHeaderLabels(names);
    if (m_modelCells.size() == m_outputs.size() && !m_modelCells.empty())
        for (int r = m_table->rowCount() - 2; r < m_table->rowCount(); ++r)
            m_table->verticalHeaderItem(r)->setToolTip(
                tr("Inside the bundled model (Model page): %1 images, the budget K / N merged "
                   "once at block %2")
                    .arg(m_modelCells.front().items)
                    .arg(m_modelCells.front().hp.schedule.atBlock));
    m_table->resizeColumnsToContents();
}

quint64 ComparePage::sweep(const qmpp::MergeParams& base, std::vector<double> budgets,
                           QString* error) {
    const auto ms = methods();
    if (!m_in.loaded || ms.empty()) {
        if (error) *error = tr("Open an input and choose the methods");
        return 0;
    }
    if (budgets.empty()) budgets = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    const StudioInput in = m_in;
    return m_jobs->start(
        QStringLiteral("sweep"),
        tr("Budget sweep: %1 methods × %2 budgets").arg(ms.size()).arg(budgets.size()),
        [this, in, base, ms, budgets](JobContext& c) -> JobOwner::Then {
            auto rows = std::make_shared<std::vector<qmpp::SweepRow>>(
                qmpp::runSweep(in.tokens(), base, ms, budgets, c.reporter()));
            return [this, rows] {
                m_rows = std::move(*rows);
                plotSweep();
            };
        });
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
        const QColor c = methodColour(QString::fromStdString(order[m]));
        g->setPen(QPen(c, 2));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 6));
    }
    m_plot->xAxis->setLabel(tr("budget (% of tokens kept)"));
    m_plot->yAxis->setLabel(QString::fromStdString(column.first));
    legendBelow(m_plot);
    m_plot->rescaleAxes();
    m_plot->xAxis->setRange(0, 102);
    m_plot->yAxis->scaleRange(1.1);
    m_plot->replot();
}

} // namespace studio
