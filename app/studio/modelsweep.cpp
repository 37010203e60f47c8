#include "modelsweep.h"

#include "plotstyle.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

namespace studio {

namespace {

const QStringList kMethods = {"quickmerge", "tome", "topk", "random"};

QString pct(double v) {
    return QString::number(100.0 * v, 'f', 2) + " %";
}

} // namespace

ModelSweepPanel::ModelSweepPanel(JobOwner* jobs, QWidget* parent) : QWidget(parent), m_jobs(jobs) {
    auto* controls = new QWidget(this);
    auto* form = new QFormLayout(controls);
    m_setLabel = new QLabel(tr("(no set)"), controls);
    m_setLabel->setWordWrap(true);
    form->addRow(tr("Set"), m_setLabel);
    auto* methods = new QWidget(controls);
    auto* ml = new QVBoxLayout(methods);
    ml->setContentsMargins(0, 0, 0, 0);
    for (const QString& m : kMethods) {
        auto* box = new QCheckBox(m, methods);
        box->setChecked(true);
        ml->addWidget(box);
        m_methodBoxes.push_back(box);
    }
    form->addRow(tr("Methods"), methods);
    m_kind = new QComboBox(controls);
    m_kind->addItems({tr("r per block"), tr("budget at the block")});
    form->addRow(tr("Sweep over"), m_kind);
    m_settings = new QLineEdit(QStringLiteral("2,4,8,12,16"), controls);
    m_settings->setToolTip(tr("Comma-separated r per block, or budgets in (0, 1]"));
    form->addRow(tr("Values"), m_settings);
    connect(m_kind, &QComboBox::currentIndexChanged, this, [this](int k) {
        m_settings->setText(k == 1 ? QStringLiteral("0.9,0.7,0.5,0.3,0.1")
                                   : QStringLiteral("2,4,8,12,16"));
    });
    m_seeds = new QSpinBox(controls);
    m_seeds->setRange(1, 20);
    m_seeds->setValue(3);
    m_seeds->setToolTip(tr("Seeds for the methods that depend on one (QuickMerge++, random)"));
    form->addRow(tr("Seeds"), m_seeds);
    m_runButton = new QPushButton(tr("Run sweep"), controls);
    m_cancelButton = new QPushButton(tr("Cancel"), controls);
    m_cancelButton->setEnabled(false);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_runButton);
    buttons->addWidget(m_cancelButton);
    form->addRow(buttons);
    m_progress = new QProgressBar(controls);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    form->addRow(m_progress);
    m_status = new QLabel(controls);
    m_status->setWordWrap(true);
    form->addRow(m_status);
    m_measure = new QComboBox(controls);
    m_measure->addItems(
        {tr("Accuracy"), tr("Agreement with unmerged"), tr("KL(unmerged ‖ merged)")});
    m_measure->setCurrentIndex(1);
    form->addRow(tr("Plot"), m_measure);
    m_axis = new QComboBox(controls);
    m_axis->addItems({tr("FLOPs / unmerged FLOPs"), tr("ms per image (measured)")});
    form->addRow(tr("against"), m_axis);
    m_wrong = new QListWidget(controls);
    m_wrong->setToolTip(tr("Images the selected setting gets wrong: click one to open it"));
    form->addRow(new QLabel(tr("Misclassified at the selected point:"), controls));
    form->addRow(m_wrong);

    m_curve = makePlot(this);
    m_pareto = makePlot(this);
    m_table = new QTableWidget(this);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    auto* plots = new QSplitter(Qt::Horizontal, this);
    plots->addWidget(m_curve);
    plots->addWidget(m_pareto);
    auto* right = new QSplitter(Qt::Vertical, this);
    right->addWidget(plots);
    right->addWidget(m_table);
    right->setStretchFactor(0, 3);
    right->setStretchFactor(1, 2);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(controls);
    scroll->setWidgetResizable(true);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setMinimumWidth(220);
    scroll->setMaximumWidth(320);
    auto* lay = new QHBoxLayout(this);
    lay->addWidget(scroll);
    lay->addWidget(right, 1);

    connect(m_runButton, &QPushButton::clicked, this, [this] {
        QString err;
        if (!run(&err)) m_status->setText(err);
    });
    connect(m_cancelButton, &QPushButton::clicked, this, &ModelSweepPanel::cancel);
    connect(m_measure, &QComboBox::currentIndexChanged, this, [this] { plotCurves(); });
    connect(m_axis, &QComboBox::currentIndexChanged, this, [this] { plotCurves(); });
    for (QCustomPlot* p : {m_curve, m_pareto})
        connect(p, &QCustomPlot::plottableClick, this,
                [this, p](QCPAbstractPlottable* pl, int dataIndex, QMouseEvent*) {
                    for (int g = 0; g < p->graphCount(); ++g)
                        if (p->graph(g) == pl) onPlotClick(p, g, dataIndex);
                });
    connect(m_table, &QTableWidget::cellClicked, this, [this](int row, int) {
        selectPoint(row);
        emit openSetting(m_points[std::size_t(row)].hp);
    });
    connect(m_wrong, &QListWidget::itemClicked, this, [this](QListWidgetItem* it) {
        if (m_selected >= 0)
            emit openItem(it->data(Qt::UserRole).toInt(), m_points[std::size_t(m_selected)].hp);
    });
    connect(m_jobs, &JobOwner::progressed, this, [this](quint64 id, qint64 done, qint64 total) {
        if (id != m_running) return;
        m_progress->setRange(0, int(std::min<qint64>(total, 1 << 30)));
        m_progress->setValue(int(std::min<qint64>(done, 1 << 30)));
    });
    connect(m_jobs, &JobOwner::finished, this,
            [this](quint64 id, const QString&, JobEnd end, const QString& message) {
                if (id != m_running) return;
                m_running = 0;
                m_runButton->setEnabled(true);
                m_cancelButton->setEnabled(false);
                if (end == JobEnd::Done) m_progress->setValue(m_progress->maximum());
                if (end == JobEnd::Cancelled)
                    m_status->setText(tr("Cancelled; the previous results stay."));
                else if (end == JobEnd::Failed)
                    m_status->setText(tr("Failed: %1").arg(message));
            });
    plotCurves();
    plotPareto();
}

void ModelSweepPanel::setSource(std::shared_ptr<const qmpp::VitModel> model,
                                std::shared_ptr<const qmpp::EvalItems> set,
                                const QString& setName) {
    m_model = std::move(model);
    m_set = std::move(set);
    m_setLabel->setText(m_set ? tr("%1 (%2 items%3)")
                                    .arg(setName)
                                    .arg(m_set->count)
                                    .arg(m_set->hasLabels() ? tr(", labelled") : QString())
                              : tr("(no set)"));
}

void ModelSweepPanel::setMethods(const QStringList& methods) {
    for (QCheckBox* b : m_methodBoxes)
        b->setChecked(methods.contains(b->text()));
}

void ModelSweepPanel::setSettings(const QString& list, bool budget) {
    m_kind->setCurrentIndex(budget ? 1 : 0);
    m_settings->setText(list);
}

void ModelSweepPanel::setSeeds(int seeds) {
    m_seeds->setValue(seeds);
}

quint64 ModelSweepPanel::run(QString* error) {
    auto fail = [&](const QString& why) -> quint64 {
        if (error) *error = why;
        return 0;
    };
    if (!m_model || !m_set || m_set->count == 0) return fail(tr("Open a model and a set first"));
    QStringList methods;
    for (QCheckBox* b : m_methodBoxes)
        if (b->isChecked()) methods << b->text();
    if (methods.isEmpty()) return fail(tr("Choose at least one method"));
    const bool budget = m_kind->currentIndex() == 1;
    std::vector<double> values;
    for (const QString& s : m_settings->text().split(',', Qt::SkipEmptyParts)) {
        bool ok = false;
        const double v = s.trimmed().toDouble(&ok);
        if (!ok || (budget ? !(v > 0 && v <= 1) : (v < 0 || v != std::floor(v))))
            return fail(budget ? tr("Values: budgets in (0, 1], comma-separated (\"%1\")").arg(s)
                               : tr("Values: whole r per block, comma-separated (\"%1\")").arg(s));
        values.push_back(v);
    }
    if (values.empty()) return fail(tr("Values: give at least one"));
    std::vector<Point> grid;
    for (const QString& m : methods)
        for (double v : values) {
            Point p;
            p.method = m;
            p.setting = v;
            p.hp = m_base;
            qmpp::parse(m.toStdString(), p.hp.method);
            p.hp.schedule = budget ? qmpp::budgetSchedule(v, m_base.schedule.atBlock)
                                   : qmpp::constantSchedule(qmpp::i64(v));
            grid.push_back(std::move(p));
        }
    const int seeds = m_seeds->value();
    auto model = m_model;
    auto set = m_set;
    m_status->setText(tr("Running %1 method(s) × %2 value(s) on %3 images…")
                          .arg(methods.size())
                          .arg(values.size())
                          .arg(set->count));
    m_runButton->setEnabled(false);
    m_cancelButton->setEnabled(true);
    m_progress->setValue(0);
    m_running = m_jobs->start(
        QStringLiteral("modelsweep"), tr("Model sweep: %1 settings").arg(grid.size()),
        [this, model, set, grid, seeds](JobContext& c) mutable -> JobOwner::Then {
            // forwards: one plain pass, then each point once per seed it needs
            qint64 total = set->count, done = 0;
            for (const Point& p : grid)
                total += set->count * (qmpp::isRandom(p.hp.method) ? seeds : 1);
            const qmpp::EvalRun* plain = nullptr;
            for (Point& p : grid) {
                std::vector<std::uint64_t> s;
                for (int k = 0; k < (qmpp::isRandom(p.hp.method) ? seeds : 1); ++k)
                    s.push_back(p.hp.seed + std::uint64_t(k));
                const qint64 base = done;
                p.run = qmpp::evaluate(
                    *model, *set, p.hp, s,
                    [&](qmpp::i64 d, qmpp::i64) {
                        c.progress(base + d, total);
                        return !c.stopped();
                    },
                    plain);
                done = base + (plain ? 0 : set->count) + set->count * qmpp::i64(s.size());
                plain = &grid.front().run;
                c.check();
            }
            auto out = std::make_shared<std::vector<Point>>(std::move(grid));
            return [this, out] {
                m_points = std::move(*out);
                m_status->setText(
                    tr("%1 settings on %2 images; unmerged accuracy %3")
                        .arg(m_points.size())
                        .arg(m_set ? m_set->count : 0)
                        .arg(m_points.empty() || !m_set || !m_set->hasLabels()
                                 ? tr("(no labels)")
                                 : pct(m_points[0].run.measures[0].accuracyPlain.value)));
                fillTable();
                plotCurves();
                plotPareto();
                selectPoint(m_points.empty() ? -1 : 0);
            };
        });
    return m_running;
}

void ModelSweepPanel::cancel() {
    if (m_running) m_jobs->cancel(m_running);
}

std::vector<int> ModelSweepPanel::misclassified(int point) const {
    std::vector<int> out;
    if (point < 0 || std::size_t(point) >= m_points.size() || !m_set) return out;
    const qmpp::EvalRun& r = m_points[std::size_t(point)].run;
    const qmpp::i64 k = qmpp::i64(r.plainLogits.size()) / std::max<qmpp::i64>(m_set->count, 1);
    for (qmpp::i64 i = 0; i < m_set->count; ++i) {
        const float* l = r.mergedLogits[0].data() + i * k;
        const qmpp::i64 top = std::max_element(l, l + k) - l;
        if (m_set->labels[std::size_t(i)] >= 0 && top != m_set->labels[std::size_t(i)])
            out.push_back(int(i));
    }
    return out;
}

void ModelSweepPanel::selectPoint(int index) {
    m_selected = index;
    m_wrong->clear();
    if (index < 0 || std::size_t(index) >= m_points.size()) return;
    if (m_table->currentRow() != index) m_table->selectRow(index);
    const Point& p = m_points[std::size_t(index)];
    const qmpp::EvalRun& r = p.run;
    const qmpp::i64 k = qmpp::i64(r.plainLogits.size()) / std::max<qmpp::i64>(m_set->count, 1);
    for (int i : misclassified(index)) {
        const float* pl = r.plainLogits.data() + qmpp::i64(i) * k;
        const bool plainRight = std::max_element(pl, pl + k) - pl == m_set->labels[std::size_t(i)];
        auto* it = new QListWidgetItem(
            tr("%1%2").arg(QString::fromStdString(m_set->names[std::size_t(i)]),
                           plainRight ? tr("  (unmerged was right)") : QString()),
            m_wrong);
        it->setData(Qt::UserRole, i);
        if (plainRight) it->setForeground(QColor(0xd0, 0x40, 0x30));
    }
}

void ModelSweepPanel::onPlotClick(QCustomPlot* plot, int graphIndex, int dataIndex) {
    const auto it = m_graphPoints.find({plot, graphIndex});
    if (it == m_graphPoints.end() || dataIndex < 0 || dataIndex >= int(it->second.size())) return;
    const int point = it->second[std::size_t(dataIndex)];
    selectPoint(point);
    emit openSetting(m_points[std::size_t(point)].hp);
}

void ModelSweepPanel::fillTable() {
    const QStringList head = {tr("method"),   tr("setting"), tr("FLOPs"),     tr("ms/image"),
                              tr("accuracy"), tr("95 % CI"), tr("agreement"), tr("95 % CI"),
                              tr("KL"),       tr("seeds")};
    m_table->clear();
    m_table->setColumnCount(int(head.size()));
    m_table->setHorizontalHeaderLabels(head);
    m_table->setRowCount(int(m_points.size()));
    for (std::size_t i = 0; i < m_points.size(); ++i) {
        const Point& p = m_points[i];
        const auto acc = qmpp::overSeeds(p.run, qmpp::EvalMeasure::AccuracyMerged);
        const auto agr = qmpp::overSeeds(p.run, qmpp::EvalMeasure::Agreement);
        const auto kl = qmpp::overSeeds(p.run, qmpp::EvalMeasure::Kl);
        const bool labelled = m_set && m_set->hasLabels();
        const QStringList cells = {p.method,
                                   QString::fromStdString(p.hp.schedule.describe()),
                                   pct(p.run.flopsMerged / p.run.flopsPlain),
                                   QString::number(p.run.msMerged, 'f', 2),
                                   labelled ? pct(acc.value) : QStringLiteral("–"),
                                   labelled ? pct(acc.lo) + " – " + pct(acc.hi)
                                            : QStringLiteral("–"),
                                   pct(agr.value),
                                   pct(agr.lo) + " – " + pct(agr.hi),
                                   QString::number(kl.value, 'g', 3),
                                   QString::number(p.run.seeds.size())};
        for (int c = 0; c < cells.size(); ++c)
            m_table->setItem(int(i), c, new QTableWidgetItem(cells[c]));
    }
    m_table->resizeColumnsToContents();
}

void ModelSweepPanel::plotCurves() {
    QCustomPlot* p = m_curve;
    p->clearGraphs();
    p->legend->clearItems();
    m_graphPoints.erase(m_graphPoints.lower_bound({p, -1}),
                        m_graphPoints.upper_bound({p, 1 << 30}));
    stylePlot(p, palette());
    const int measure = m_measure->currentIndex();
    const bool byTime = m_axis->currentIndex() == 1;
    const qmpp::EvalMeasure em = measure == 0   ? qmpp::EvalMeasure::AccuracyMerged
                                 : measure == 1 ? qmpp::EvalMeasure::Agreement
                                                : qmpp::EvalMeasure::Kl;
    const bool pctAxis = measure != 2;
    p->xAxis->setLabel(m_axis->currentText());
    p->yAxis->setLabel(m_measure->currentText() + (pctAxis ? " (%)" : ""));
    QStringList order;
    for (const Point& pt : m_points)
        if (!order.contains(pt.method)) order << pt.method;
    for (const QString& m : order) {
        std::vector<int> idx;
        for (std::size_t i = 0; i < m_points.size(); ++i)
            if (m_points[i].method == m) idx.push_back(int(i));
        auto x = [&](const Point& pt) {
            return byTime ? pt.run.msMerged : pt.run.flopsMerged / pt.run.flopsPlain;
        };
        std::sort(idx.begin(), idx.end(), [&](int a, int b) {
            return x(m_points[std::size_t(a)]) < x(m_points[std::size_t(b)]);
        });
        QVector<double> xs, ys, lo, hi;
        const double s = pctAxis ? 100.0 : 1.0;
        for (int i : idx) {
            const qmpp::SeedSummary v = qmpp::overSeeds(m_points[std::size_t(i)].run, em);
            xs << x(m_points[std::size_t(i)]);
            ys << v.value * s;
            lo << v.lo * s;
            hi << v.hi * s;
        }
        QCPGraph* g = bandCurve(p, xs, ys, lo, hi, methodColour(m), m);
        g->setSelectable(QCP::stSingleData);
        m_graphPoints[{p, p->graphCount() - 1}] = idx;
    }
    if (!m_points.empty()) legendBelow(p, 4);
    p->rescaleAxes();
    p->xAxis->scaleRange(1.1);
    p->yAxis->scaleRange(1.1);
    replotWhenShown(p);
}

void ModelSweepPanel::plotPareto() {
    QCustomPlot* p = m_pareto;
    p->clearGraphs();
    p->legend->clearItems();
    m_graphPoints.erase(m_graphPoints.lower_bound({p, -1}),
                        m_graphPoints.upper_bound({p, 1 << 30}));
    stylePlot(p, palette());
    p->xAxis->setLabel(tr("images/s (measured)"));
    p->yAxis->setLabel(tr("Agreement with unmerged (%)"));
    QStringList order;
    for (const Point& pt : m_points)
        if (!order.contains(pt.method)) order << pt.method;
    auto speed = [](const Point& pt) {
        return pt.run.msMerged > 0 ? 1000.0 / pt.run.msMerged : 0.0;
    };
    for (const QString& m : order) {
        std::vector<int> idx;
        QVector<double> xs, ys;
        for (std::size_t i = 0; i < m_points.size(); ++i)
            if (m_points[i].method == m) {
                idx.push_back(int(i));
                xs << speed(m_points[i]);
                ys << 100.0 * qmpp::overSeeds(m_points[i].run, qmpp::EvalMeasure::Agreement).value;
            }
        QCPGraph* g = p->addGraph();
        g->setData(xs, ys);
        g->setLineStyle(QCPGraph::lsNone);
        const QColor col = methodColour(m);
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, col, col, 8));
        g->setName(m);
        g->setSelectable(QCP::stSingleData);
        m_graphPoints[{p, p->graphCount() - 1}] = idx;
    }
    // the frontier: no other point is both faster and agrees more
    std::vector<int> all(m_points.size());
    for (std::size_t i = 0; i < all.size(); ++i)
        all[i] = int(i);
    std::sort(all.begin(), all.end(), [&](int a, int b) {
        return speed(m_points[std::size_t(a)]) > speed(m_points[std::size_t(b)]);
    });
    QVector<double> fx, fy;
    double best = -1;
    for (int i : all) {
        const double a =
            qmpp::overSeeds(m_points[std::size_t(i)].run, qmpp::EvalMeasure::Agreement).value;
        if (a > best) {
            best = a;
            fx << speed(m_points[std::size_t(i)]);
            fy << 100.0 * a;
        }
    }
    if (!fx.isEmpty()) {
        QCPGraph* f = p->addGraph();
        f->setData(fx, fy, true);
        f->setLineStyle(QCPGraph::lsStepLeft);
        f->setPen(QPen(p->xAxis->labelColor(), 1, Qt::DashLine));
        f->setName(tr("Pareto front"));
        legendBelow(p, 3);
    }
    p->rescaleAxes();
    p->xAxis->scaleRange(1.15);
    p->yAxis->scaleRange(1.15);
    replotWhenShown(p);
}

} // namespace studio
