#include "lmpanel.h"

#include "modelpage.h"
#include "plotstyle.h"

#include <QComboBox>
#include <QFile>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace studio {

namespace {

QSpinBox* spin(QWidget* parent, int lo, int hi, int value, const QString& tip) {
    auto* b = new QSpinBox(parent);
    b->setRange(lo, hi);
    b->setValue(value);
    b->setToolTip(tip);
    return b;
}

// Blue where the loss fell, red where it rose, by |change| / scale.
QRgb changeColour(double change, double scale) {
    const double t = std::clamp(std::fabs(change) / std::max(scale, 1e-12), 0.0, 1.0);
    const int fade = int(std::lround(255 * (1 - 0.75 * t)));
    return change >= 0 ? qRgb(255, fade, fade) : qRgb(fade, fade, 255);
}

} // namespace

LmPanel::LmPanel(JobOwner* jobs, QWidget* parent)
    : QWidget(parent), m_jobs(jobs), m_source(tr("Psalm 23 (bundled)")) {
    // the settings in two rows above the views: the page is narrow beside the docks
    auto* controls = new QWidget(this);
    auto* g = new QGridLayout(controls);
    g->setContentsMargins(0, 0, 0, 0);
    m_modelLabel = new QLabel(tr("(the bundled kjv-lm)"), controls);
    m_window = spin(controls, 3, 4096, 64, tr("Words per window (the model's context at most)"));
    m_prefix = spin(controls, 1, 4094, 32, tr("T: the first words of each window, compressed"));
    m_groups = spin(controls, 1, 4094, 8, tr("K: the groups the prefix becomes"));
    m_block = spin(controls, 0, 63, 1, tr("The block whose output is compressed"));
    m_method = new QComboBox(controls);
    m_method->addItems({"quickmerge", "random"});
    m_seeds = spin(controls, 1, 20, 3, tr("Seeds 0..n-1"));
    m_measureButton = new QPushButton(tr("Measure"), controls);
    m_sweepButton = new QPushButton(tr("Budget sweep"), controls);
    const std::pair<QString, QWidget*> cells[] = {
        {tr("Window"), m_window},  {tr("Prefix T"), m_prefix}, {tr("Groups K"), m_groups},
        {tr("At block"), m_block}, {tr("Method"), m_method},   {tr("Seeds"), m_seeds}};
    for (int i = 0; i < 6; ++i) {
        g->addWidget(new QLabel(cells[i].first, controls), i / 3, 2 * (i % 3));
        g->addWidget(cells[i].second, i / 3, 2 * (i % 3) + 1);
    }
    g->addWidget(m_measureButton, 0, 6);
    g->addWidget(m_sweepButton, 1, 6);
    g->setColumnStretch(7, 1);

    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_strip = new TokenStrip(this);
    auto* stripScroll = new QScrollArea(this);
    stripScroll->setWidget(m_strip);
    stripScroll->setWidgetResizable(true);
    m_changePlot = makePlot(this);
    m_sweepPlot = makePlot(this);
    for (QCustomPlot* p : {m_changePlot, m_sweepPlot})
        p->setMinimumSize(120, 100);
    stripScroll->setMinimumHeight(40);
    auto* plots = new QSplitter(Qt::Horizontal, this);
    plots->addWidget(m_changePlot);
    plots->addWidget(m_sweepPlot);
    plots->setStretchFactor(0, 3);
    plots->setStretchFactor(1, 2);
    auto* right = new QSplitter(Qt::Vertical, this);
    auto* top = new QWidget(right);
    auto* tl = new QVBoxLayout(top);
    tl->setContentsMargins(0, 0, 0, 0);
    tl->addWidget(m_modelLabel);
    tl->addWidget(m_summary);
    tl->addWidget(stripScroll, 1);
    right->addWidget(top);
    right->addWidget(plots);
    auto* lay = new QVBoxLayout(this);
    lay->addWidget(controls);
    lay->addWidget(right, 1);

    connect(m_measureButton, &QPushButton::clicked, this, [this] {
        QString e;
        if (!measure(&e)) m_summary->setText(e);
    });
    connect(m_sweepButton, &QPushButton::clicked, this, [this] {
        QString e;
        if (!sweep(&e)) m_summary->setText(e);
    });
    m_summary->setText(tr("Measure: how much the next words' loss changes when each window's "
                          "first T words are compressed to K groups."));
}

bool LmPanel::openModel(const QString& path, QString* error) {
    try {
        m_model = qmpp::loadLm(path.toStdString());
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    m_modelPath = path;
    const qmpp::LmConfig& c = config(*m_model);
    m_modelLabel->setText(tr("Model <b>%1</b>: %2 blocks, D %3, %4 words, context %5")
                              .arg(QString::fromStdString(c.name).toHtmlEscaped())
                              .arg(c.depth)
                              .arg(c.dim)
                              .arg(c.vocab)
                              .arg(c.context));
    m_window->setMaximum(int(c.context)); // clamps the settings, keeps them otherwise
    m_prefix->setMaximum(int(c.context - 2));
    m_groups->setMaximum(int(c.context - 2));
    m_block->setMaximum(int(c.depth - 1));
    return true;
}

bool LmPanel::ensureModel(QString* error) {
    if (m_model) return true;
    const QString p = ModelPage::bundledModelPath(QStringLiteral("kjv-lm.safetensors"));
    if (p.isEmpty()) {
        if (error) *error = tr("The bundled language model kjv-lm.safetensors was not found");
        return false;
    }
    return openModel(p, error);
}

void LmPanel::setWords(const QStringList& words, const QString& source) {
    m_words = words;
    m_source = words.isEmpty() ? tr("Psalm 23 (bundled)") : QFileInfo(source).fileName();
    m_run.reset();
    m_change.clear();
    m_points.clear();
    m_strip->clear();
}

void LmPanel::setMerge(qmpp::i64 window, qmpp::i64 prefix, qmpp::i64 groups, qmpp::i64 block,
                       qmpp::ModelMethod method, int seeds) {
    m_window->setValue(int(window));
    m_prefix->setValue(int(prefix));
    m_groups->setValue(int(groups));
    m_block->setValue(int(block));
    m_method->setCurrentText(QString::fromLatin1(qmpp::toString(method)));
    m_seeds->setValue(seeds);
}

qmpp::PrefixMerge LmPanel::merge() const {
    qmpp::PrefixMerge pm;
    qmpp::parse(m_method->currentText().toStdString(), pm.method);
    pm.block = m_block->value();
    pm.prefix = m_prefix->value();
    pm.groups = m_groups->value();
    return pm;
}

qmpp::i64 LmPanel::window() const {
    return m_window->value();
}

std::string LmPanel::text() const {
    QStringList words = m_words;
    if (words.isEmpty()) { // the bundled text: one word per line
        QFile f(QStringLiteral(":/samples/psalm23.txt"));
        if (f.open(QIODevice::ReadOnly))
            words = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    }
    return words.join(' ').toStdString();
}

std::vector<qmpp::i64> LmPanel::ids() const {
    return qmpp::tokenizeLm(*m_model, text());
}

quint64 LmPanel::measure(QString* error) {
    if (!ensureModel(error)) return 0;
    const qmpp::PrefixMerge pm = merge();
    const qmpp::i64 window = this->window();
    if (pm.prefix > window - 2 || pm.groups > pm.prefix) {
        if (error)
            *error = tr("The prefix lies in 1..window - 2 (%1) and the groups in 1..the prefix")
                         .arg(window - 2);
        return 0;
    }
    const std::vector<qmpp::i64> ids = this->ids();
    auto model = m_model;
    std::vector<std::uint64_t> seeds;
    for (int s = 0; s < m_seeds->value(); ++s)
        seeds.push_back(std::uint64_t(s));
    return m_jobs->start(
        QStringLiteral("lm"), tr("Language model: %1 → %2").arg(pm.prefix).arg(pm.groups),
        [this, model, ids, window, pm, seeds](JobContext&) -> JobOwner::Then {
            auto run = std::make_shared<const qmpp::LmEvalRun>(
                qmpp::evaluateLm(*model, ids, window, pm, seeds));
            return [this, run, n = ids.size()] {
                m_run = run;
                m_change.assign(n, std::numeric_limits<double>::quiet_NaN());
                for (std::size_t q = 0; q < run->scoredWord.size(); ++q) {
                    double d = 0;
                    for (const auto& s : run->seeds)
                        d += s.nll[q] - run->nllPlain[q];
                    m_change[std::size_t(run->scoredWord[q])] = d / double(run->seeds.size());
                }
                showRun();
            };
        });
}

void LmPanel::showRun() {
    const qmpp::LmEvalRun& r = *m_run;
    std::vector<std::string> words; // as the model cut them
    const std::vector<qmpp::i64> wordIds = qmpp::tokenizeLm(*m_model, text(), &words);
    QStringList text;
    for (const std::string& w : words)
        text << QString::fromStdString(w);
    const std::size_t n = wordIds.size();
    // labels: the prefix's groups per window, every other word its own
    std::vector<qmpp::i64> labels(n, 0);
    qmpp::i64 next = 0;
    std::vector<bool> inPrefix(n, false);
    for (std::size_t w = 0; w < r.windowStart.size(); ++w) {
        const auto& g = r.prefixGroups[w];
        qmpp::i64 most = -1;
        for (std::size_t i = 0; i < g.size(); ++i) {
            labels[std::size_t(r.windowStart[w]) + i] = next + g[i];
            inPrefix[std::size_t(r.windowStart[w]) + i] = true;
            most = std::max(most, g[i]);
        }
        next += most + 1;
    }
    for (std::size_t i = 0; i < n; ++i)
        if (!inPrefix[i]) labels[i] = next++;
    m_strip->setTokens(text, std::vector<float>(n, 0.0f), labels);
    double scale = 0;
    for (double d : m_change)
        if (std::isfinite(d)) scale = std::max(scale, std::fabs(d));
    std::vector<QRgb> colours(n);
    QStringList notes;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = m_change[i];
        colours[i] = inPrefix[i]        ? qRgb(225, 225, 225)
                     : std::isfinite(d) ? changeColour(d, scale)
                                        : qRgb(255, 255, 255);
        notes << (inPrefix[i]        ? tr("in the compressed prefix, group %1").arg(labels[i])
                  : std::isfinite(d) ? tr("its loss changed by %1 nats").arg(d, 0, 'f', 4)
                                     : tr("no loss predicts it"));
    }
    m_strip->setBackgrounds(colours, notes);
    double agree = 0, kl = 0, ce = 0;
    for (const auto& s : r.seeds)
        agree += s.agreement, kl += s.klMean, ce += s.ceMerged;
    const double ns = double(r.seeds.size());
    m_summary->setText(
        tr("<b>%9</b>: %1 window(s), %2 scored words. Cross-entropy unmerged <b>%3</b>, merged "
           "<b>%4</b> "
           "(change <b>%5</b> nats, mean of %6 seed(s)); top-1 agreement %7 %, KL %8. Prefix "
           "words in grey, framed by group; later words red where the loss rose, blue where it "
           "fell.")
            .arg(r.windows)
            .arg(r.positions)
            .arg(r.cePlain, 0, 'f', 4)
            .arg(ce / ns, 0, 'f', 4)
            .arg(ce / ns - r.cePlain, 0, 'f', 4)
            .arg(r.seeds.size())
            .arg(100 * agree / ns, 0, 'f', 2)
            .arg(kl / ns, 0, 'g', 3)
            .arg(m_source.toHtmlEscaped()));
    // the change per scored word
    QCustomPlot* p = m_changePlot;
    p->clearPlottables();
    stylePlot(p, palette());
    QVector<double> x, up, down;
    QVector<double> xu, xd;
    for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(m_change[i]))
            (m_change[i] >= 0 ? xu : xd) << double(i), (m_change[i] >= 0 ? up : down)
                                                           << m_change[i];
    auto bars = [&](const QVector<double>& xs, const QVector<double>& ys, const QColor& c,
                    const QString& name) {
        auto* b = new QCPBars(p->xAxis, p->yAxis);
        b->setData(xs, ys);
        b->setBrush(c);
        b->setPen(Qt::NoPen);
        b->setWidth(0.8);
        b->setName(name);
    };
    bars(xu, up, QColor(0xd0, 0x40, 0x30), tr("loss rose"));
    bars(xd, down, QColor(0x30, 0x60, 0xd0), tr("loss fell"));
    p->xAxis->setLabel(tr("word of the text"));
    p->yAxis->setLabel(tr("Δ next-word loss (nats)"));
    p->rescaleAxes();
    p->xAxis->setRange(-1, double(n));
    p->yAxis->scaleRange(1.15);
    legendBelow(p, 2);
    replotWhenShown(p);
}

quint64 LmPanel::sweep(QString* error) {
    if (!ensureModel(error)) return 0;
    const qmpp::PrefixMerge base = merge();
    const qmpp::i64 window = this->window();
    if (base.prefix > window - 2) {
        if (error) *error = tr("The prefix lies in 1..window - 2 (%1)").arg(window - 2);
        return 0;
    }
    std::vector<qmpp::i64> ks;
    for (double b : {1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2, 1.0}) {
        const qmpp::i64 k = std::max<qmpp::i64>(1, qmpp::i64(std::floor(b * double(base.prefix))));
        if (ks.empty() || ks.back() != k) ks.push_back(k);
    }
    const std::vector<qmpp::i64> ids = this->ids();
    auto model = m_model;
    const int nSeeds = m_seeds->value();
    return m_jobs->start(
        QStringLiteral("lmsweep"), tr("Language model budget sweep"),
        [this, model, ids, window, base, ks, nSeeds](JobContext& c) -> JobOwner::Then {
            std::vector<SweepPoint> pts;
            const qint64 total = qint64(ks.size()) * 2;
            std::vector<std::uint64_t> seeds;
            for (int s = 0; s < nSeeds; ++s)
                seeds.push_back(std::uint64_t(s));
            for (qmpp::ModelMethod m : {qmpp::ModelMethod::QuickMerge, qmpp::ModelMethod::Random})
                for (qmpp::i64 k : ks) {
                    qmpp::PrefixMerge pm = base;
                    pm.method = m;
                    pm.groups = k;
                    const qmpp::LmEvalRun r = qmpp::evaluateLm(*model, ids, window, pm, seeds);
                    SweepPoint p;
                    p.method = QString::fromLatin1(qmpp::toString(m));
                    p.groups = k;
                    p.budget = double(k) / double(pm.prefix);
                    p.lo = 1e300;
                    p.hi = -1e300;
                    for (const auto& s : r.seeds) {
                        const double d = s.ceMerged - r.cePlain;
                        p.change += d / double(r.seeds.size());
                        p.lo = std::min(p.lo, d);
                        p.hi = std::max(p.hi, d);
                    }
                    pts.push_back(p);
                    c.progress(qint64(pts.size()), total);
                    c.check();
                }
            return [this, pts] {
                m_points = pts;
                plotSweep();
            };
        });
}

void LmPanel::plotSweep() {
    QCustomPlot* p = m_sweepPlot;
    p->clearGraphs();
    stylePlot(p, palette());
    for (const QString& m : {QStringLiteral("quickmerge"), QStringLiteral("random")}) {
        QVector<double> x, y, lo, hi;
        for (const SweepPoint& s : m_points)
            if (s.method == m) x << s.budget, y << s.change, lo << s.lo, hi << s.hi;
        bandCurve(p, x, y, lo, hi, methodColour(m), m);
    }
    p->xAxis->setLabel(tr("K / T (budget)"));
    p->xAxis->setScaleType(QCPAxis::stLogarithmic);
    p->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    p->yAxis->setLabel(tr("Δ cross-entropy (nats)"));
    p->rescaleAxes();
    p->yAxis->scaleRange(1.2);
    legendBelow(p, 2);
    replotWhenShown(p);
}

} // namespace studio
