#include "tokenspage.h"

#include "colormap.h"
#include "plotstyle.h"
#include "selection.h"

#include <QComboBox>
#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QResizeEvent>
#include <QRubberBand>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace studio {

namespace {
constexpr long long kGroupGraphs = 300; // per-group PCA graphs at most; beyond, colours cycle
}

TokensPage::TokensPage(QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    auto* head = new QHBoxLayout;
    head->addWidget(new QLabel(tr("Colour tokens by")));
    m_layer = new QComboBox(this);
    m_layer->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_layer->setToolTip(
        tr("The strip's background: the combined saliency the merge used, or one layer's "
           "(its attention entropy, min-max normalized; low entropy = salient)"));
    head->addWidget(m_layer);
    m_batchLabel = new QLabel(tr("Batch item"));
    head->addSpacing(16);
    head->addWidget(m_batchLabel);
    m_batch = new QSpinBox(this);
    m_batch->setToolTip(tr("Which item of a [B, N, D] input to merge and show"));
    head->addWidget(m_batch);
    m_note = new QLabel(this);
    head->addSpacing(16);
    head->addWidget(m_note, 1);
    v->addLayout(head);

    m_strip = new TokenStrip(this);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(m_strip);
    scroll->setWidgetResizable(true);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(scroll);
    auto* plots = new QSplitter(Qt::Horizontal, split);
    m_simPlot = makePlot(plots);
    m_simMap = new QCPColorMap(m_simPlot->xAxis, m_simPlot->yAxis);
    auto* scale = new QCPColorScale(m_simPlot);
    m_simPlot->plotLayout()->addElement(0, 1, scale);
    m_simMap->setColorScale(scale);
    m_simMap->setGradient(viridis());
    m_simMap->setInterpolate(false);
    scale->axis()->setLabel(tr("cosine"));
    m_simPlot->xAxis->setLabel(tr("tokens in group order"));
    m_simPlot->yAxis->setRangeReversed(true);
    m_pcaPlot = makePlot(plots);
    m_layerPlot = makePlot(plots);
    plots->addWidget(m_simPlot);
    plots->addWidget(m_pcaPlot);
    plots->addWidget(m_layerPlot);
    m_views = new QTabWidget(split);
    m_views->setDocumentMode(true);
    m_views->addTab(plots, tr("Similarity, PCA, layers"));
    split->addWidget(m_views);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    for (int i = 0; i < 3; ++i)
        plots->setStretchFactor(i, 1);
    m_plotsSplit = plots;
    connect(plots, &QSplitter::splitterMoved, this, [this] { m_plotsSized = true; });
    plots->installEventFilter(this);
    m_note->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    v->addWidget(split, 1);
    // one axis range for both directions of the heatmap: zooming keeps cells square
    connect(m_simPlot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), m_simPlot->yAxis,
            [this](const QCPRange& r) { m_simPlot->yAxis->setRange(r); });

    connect(m_layer, &QComboBox::currentIndexChanged, this, [this] {
        refreshStrip();
        if (m_out) {
            plotLayerEntropy(m_layerPlot, m_out->result, selectedLayer());
            m_layerPlot->legend->setVisible(false);
            replotWhenShown(m_layerPlot);
        }
    });
    connect(m_batch, &QSpinBox::valueChanged, this, [this](int i) {
        if (m_in.loaded && !m_batch->signalsBlocked()) emit batchItemChanged(i);
    });
    connect(m_strip, &TokenStrip::tokenHovered, this,
            [this](qmpp::i64, const QString& t) { emit tokenHovered(t); });
    connect(m_strip, &TokenStrip::tokenClicked, this, &TokensPage::selectGroupOf);
    connect(m_pcaPlot, &QCustomPlot::mousePress, this, &TokensPage::pcaPress);
    connect(m_pcaPlot, &QCustomPlot::mouseMove, this, &TokensPage::pcaMove);
    connect(m_pcaPlot, &QCustomPlot::mouseRelease, this, &TokensPage::pcaRelease);
    connect(m_simPlot, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() == Qt::LeftButton) selectGroupOf(heatmapTokenAt(e->position()));
    });
    m_pcaPlot->setToolTip(tr("Click a point: select its group · Shift-drag: select a rectangle"));
    m_batch->setVisible(false);
    m_batchLabel->setVisible(false);
    restyle();
}

void TokensPage::setSelection(TokenSelection* selection) {
    m_selection = selection;
    m_strip->setSelection(selection);
    connect(selection, &TokenSelection::changed, this, &TokensPage::refreshSelection);
}

void TokensPage::selectGroupOf(qmpp::i64 token) {
    if (!m_selection || !m_out) return;
    if (token < 0) {
        m_selection->clear();
        return;
    }
    const qmpp::i64 g = m_out->result.labels[std::size_t(token)];
    m_selection->setTokens(TokenSelection::groupOf(m_out->result, token),
                           g < 0 ? tr("token %1 (dropped)").arg(token) : tr("group %1").arg(g));
}

QString TokensPage::describeToken(qmpp::i64 token) const {
    const auto& t = m_in.tokens();
    QString s = tr("token %1").arg(token);
    if (token < qmpp::i64(t.labels.size()))
        s += tr(" “%1”").arg(QString::fromStdString(t.labels[std::size_t(token)]));
    else if (t.gridCols > 0)
        s += tr(" · patch row %1, column %2")
                 .arg((token / t.gridCols) % std::max(1, t.gridRows))
                 .arg(token % t.gridCols);
    if (m_out) {
        const qmpp::i64 g = m_out->result.labels[std::size_t(token)];
        s += g < 0 ? tr(" · dropped") : tr(" · group %1").arg(g);
    }
    return s;
}

qmpp::i64 TokensPage::pcaTokenAt(const QPointF& pixel, double maxPixels) const {
    if (!m_out || !m_out->pca) return -1;
    const auto& pts = m_out->pca->tokens;
    qmpp::i64 best = -1;
    double bestD = maxPixels * maxPixels;
    for (qmpp::i64 i = 0; i < qmpp::i64(pts.size() / 2); ++i) {
        const double dx = m_pcaPlot->xAxis->coordToPixel(pts[std::size_t(2 * i)]) - pixel.x();
        const double dy = m_pcaPlot->yAxis->coordToPixel(pts[std::size_t(2 * i + 1)]) - pixel.y();
        if (dx * dx + dy * dy <= bestD) bestD = dx * dx + dy * dy, best = i;
    }
    return best;
}

std::vector<qmpp::i64> TokensPage::pcaTokensIn(const QRectF& pixels) const {
    std::vector<qmpp::i64> out;
    if (!m_out || !m_out->pca) return out;
    const auto& pts = m_out->pca->tokens;
    for (qmpp::i64 i = 0; i < qmpp::i64(pts.size() / 2); ++i)
        if (pixels.contains(m_pcaPlot->xAxis->coordToPixel(pts[std::size_t(2 * i)]),
                            m_pcaPlot->yAxis->coordToPixel(pts[std::size_t(2 * i + 1)])))
            out.push_back(i);
    return out;
}

qmpp::i64 TokensPage::heatmapTokenAt(const QPointF& pixel) const {
    if (!m_out || !m_out->similarity || !m_simMap->visible()) return -1;
    const auto* s = m_out->similarity.get();
    const long long row = std::llround(m_simPlot->yAxis->pixelToCoord(pixel.y()));
    const long long col = std::llround(m_simPlot->xAxis->pixelToCoord(pixel.x()));
    if (row < 0 || row >= s->side || col < 0 || col >= s->side) return -1;
    const qmpp::i64 at = row * s->block;
    return at < qmpp::i64(s->order.size()) ? s->order[std::size_t(at)] : -1;
}

void TokensPage::pcaPress(QMouseEvent* e) {
    if (e->button() != Qt::LeftButton) return;
    if (e->modifiers() & Qt::ShiftModifier) { // a rectangle instead of a pan
        m_pcaPlot->setInteraction(QCP::iRangeDrag, false);
        if (!m_band) m_band = new QRubberBand(QRubberBand::Rectangle, m_pcaPlot);
        m_bandOrigin = e->position().toPoint();
        m_band->setGeometry(QRect(m_bandOrigin, QSize()));
        m_band->show();
        return;
    }
    const qmpp::i64 t = pcaTokenAt(e->position());
    if (t >= 0) selectGroupOf(t);
}

void TokensPage::pcaMove(QMouseEvent* e) {
    if (m_band && m_band->isVisible()) {
        m_band->setGeometry(QRect(m_bandOrigin, e->position().toPoint()).normalized());
        return;
    }
    const qmpp::i64 t = pcaTokenAt(e->position());
    if (t >= 0) {
        const QString text = describeToken(t);
        QToolTip::showText(e->globalPosition().toPoint(), text, m_pcaPlot);
        emit tokenHovered(text);
    }
}

void TokensPage::pcaRelease(QMouseEvent* e) {
    if (!m_band || !m_band->isVisible()) return;
    m_band->hide();
    m_pcaPlot->setInteraction(QCP::iRangeDrag, true);
    const QRect r = QRect(m_bandOrigin, e->position().toPoint()).normalized();
    if (m_selection && r.width() > 2 && r.height() > 2)
        m_selection->setTokens(pcaTokensIn(r), tr("a rectangle of the PCA scatter"));
}

void TokensPage::refreshSelection() {
    if (!m_out) return;
    QVector<double> px, py, hx, hy;
    const auto* pca = m_out->pca.get();
    const auto* sim = m_out->similarity.get();
    if (m_selection)
        for (qmpp::i64 t : m_selection->tokens()) {
            if (pca && t < qmpp::i64(pca->tokens.size() / 2))
                px << pca->tokens[std::size_t(2 * t)], py << pca->tokens[std::size_t(2 * t + 1)];
            if (sim && t < qmpp::i64(m_orderPos.size())) {
                const double at = double(m_orderPos[std::size_t(t)] / sim->block);
                hx << at, hy << at;
            }
        }
    if (m_pcaSel) m_pcaSel->setData(px, py);
    if (m_simSel) m_simSel->setData(hx, hy);
    replotWhenShown(m_pcaPlot);
    replotWhenShown(m_simPlot);
}

bool TokensPage::eventFilter(QObject* o, QEvent* e) {
    // three equal plots until the user drags the splitter: sizes given while the splitter is
    // hidden are pixels, and on its first show the plots' size hints share the rest unevenly
    if (o == m_plotsSplit && !m_plotsSized &&
        (e->type() == QEvent::Resize || e->type() == QEvent::Show))
        QTimer::singleShot(0, this, [this] {
            if (m_plotsSized || !m_plotsSplit->isVisible()) return;
            const int w = std::max(30, m_plotsSplit->width() / 3);
            m_plotsSplit->setSizes({w, w, w});
        });
    return QWidget::eventFilter(o, e);
}

void TokensPage::changeEvent(QEvent* e) {
    if (e->type() == QEvent::PaletteChange) restyle();
    QWidget::changeEvent(e);
}

void TokensPage::restyle() {
    for (QCustomPlot* p : {m_simPlot, m_pcaPlot, m_layerPlot})
        stylePlot(p, palette());
}

void TokensPage::setInput(const StudioInput& in, qmpp::i64 batchItem) {
    m_in = in;
    m_out.reset();
    const auto& shape = in.loaded->sourceShape;
    const bool batch = in.loaded->kind == qmpp::InputKind::Embeddings && shape.size() == 3;
    m_batch->blockSignals(true);
    m_batch->setRange(0, batch ? int(shape[0]) - 1 : 0);
    m_batch->setValue(int(std::max<qmpp::i64>(0, batchItem)));
    m_batch->blockSignals(false);
    m_batch->setVisible(batch);
    m_batchLabel->setVisible(batch);
    if (batch) m_batchLabel->setText(tr("Batch item (of %1)").arg(shape[0]));
    m_strip->clear();
}

void TokensPage::addView(QWidget* view, const QString& title) {
    m_views->addTab(view, title);
}

void TokensPage::selectLayer(int layer) {
    m_layer->setCurrentIndex(std::clamp(layer + 1, 0, m_layer->count() - 1));
}

int TokensPage::selectedLayer() const {
    return m_layer->currentIndex() - 1;
}

void TokensPage::setOutput(std::shared_ptr<const RunOutput> out) {
    m_out = std::move(out);
    const auto& r = m_out->result;
    // layer selector: keep the choice while the layer count stays
    if (m_layer->count() != int(r.layers) + 1) {
        m_layer->blockSignals(true);
        m_layer->clear();
        m_layer->addItem(tr("combined saliency"));
        for (long long l = 0; l < r.layers; ++l)
            m_layer->addItem(tr("layer %1").arg(l));
        m_layer->blockSignals(false);
    }
    refreshStrip();
    m_note->setText(tr("%1 tokens → %2 · %3 merged spans · saliency from %4")
                        .arg(r.n)
                        .arg(r.k)
                        .arg(m_strip->spans().size())
                        .arg(QString::fromStdString(r.saliencySource)));
    refreshPlots();
}

void TokensPage::refreshStrip() {
    if (!m_out) return;
    const auto& r = m_out->result;
    QStringList text;
    for (const auto& s : m_in.tokens().labels)
        text << QString::fromStdString(s);
    m_strip->setTokens(text, qmpp::layerSaliency(r, selectedLayer()), r.labels);
}

void TokensPage::refreshPlots() {
    const auto& r = m_out->result;
    // similarity, rows and columns in group order, with the group boundaries
    m_simPlot->clearItems();
    if (const auto* s = m_out->similarity.get()) {
        m_simMap->data()->setSize(int(s->side), int(s->side));
        m_simMap->data()->setRange(QCPRange(0, double(s->side - 1)),
                                   QCPRange(0, double(s->side - 1)));
        for (long long a = 0; a < s->side; ++a)
            for (long long b = 0; b < s->side; ++b)
                m_simMap->data()->setCell(int(b), int(a), s->values[a * s->side + b]);
        m_simMap->rescaleDataRange(
            true);                   // hidden states are often anisotropic: show their own range
        if (s->bounds.size() <= 200) // group edges, while they stay readable
            for (double e : s->bounds)
                for (bool vertical : {true, false}) {
                    auto* line = new QCPItemStraightLine(m_simPlot);
                    line->setPen(QPen(QColor(0, 0, 0, 150), 1));
                    const double at = e - 0.5;
                    if (vertical)
                        line->point1->setCoords(at, 0), line->point2->setCoords(at, 1);
                    else
                        line->point1->setCoords(0, at), line->point2->setCoords(1, at);
                }
        m_simPlot->xAxis->setLabel(s->block > 1
                                       ? tr("tokens in group order (%1 per cell)").arg(s->block)
                                       : tr("tokens in group order"));
        m_simPlot->xAxis->setRange(-0.5, double(s->side) - 0.5);
        m_simPlot->xAxis->ticker()->setTickCount(3); // a narrow plot: readable labels
        m_simPlot->yAxis->setRange(-0.5, double(s->side) - 0.5);
        m_simMap->setVisible(true);
        m_orderPos.assign(s->order.size(), 0);
        for (std::size_t i = 0; i < s->order.size(); ++i)
            m_orderPos[std::size_t(s->order[i])] = qmpp::i64(i);
    } else {
        m_simMap->setVisible(false);
        m_orderPos.clear();
    }
    // the linked selection on the heatmap: its tokens marked on the diagonal
    m_simPlot->clearGraphs();
    m_simSel = m_simPlot->addGraph();
    m_simSel->setLineStyle(QCPGraph::lsNone);
    m_simSel->setScatterStyle(
        QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(Qt::white, 1.5), QColor(0, 0, 0, 0), 7));
    m_simSel->setName(tr("selected"));

    // PCA: tokens as dots in their group's colour, merged tokens as rings
    m_pcaPlot->clearGraphs();
    m_pcaSel = nullptr;
    if (const auto* p = m_out->pca.get()) {
        const long long buckets = std::min<long long>(std::max<long long>(r.k, 1), kGroupGraphs);
        std::vector<QVector<double>> tx(std::size_t(buckets + 1)), ty(std::size_t(buckets + 1));
        for (long long i = 0; i < r.n; ++i) {
            const long long g = r.labels[i];
            const std::size_t b = g < 0 ? std::size_t(buckets) : std::size_t(g % buckets);
            tx[b] << p->tokens[i * 2];
            ty[b] << p->tokens[i * 2 + 1];
        }
        for (long long b = 0; b <= buckets; ++b) {
            if (tx[std::size_t(b)].isEmpty()) continue;
            auto* g = m_pcaPlot->addGraph();
            g->setLineStyle(QCPGraph::lsNone);
            const QColor c = b == buckets ? QColor(60, 60, 60) : groupColour(b);
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c, c, 5));
            g->setData(tx[std::size_t(b)], ty[std::size_t(b)]);
            g->setName(b == buckets ? tr("dropped") : tr("group %1").arg(b));
        }
        std::vector<QVector<double>> mx(static_cast<std::size_t>(buckets)),
            my(static_cast<std::size_t>(buckets));
        for (long long g = 0; g < r.k; ++g)
            mx[std::size_t(g % buckets)] << p->merged[g * 2],
                my[std::size_t(g % buckets)] << p->merged[g * 2 + 1];
        for (long long b = 0; b < buckets; ++b) {
            if (mx[std::size_t(b)].isEmpty()) continue;
            auto* g = m_pcaPlot->addGraph();
            g->setLineStyle(QCPGraph::lsNone);
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle,
                                               QPen(groupColour(b).darker(160), 2), groupColour(b),
                                               11));
            g->setData(mx[std::size_t(b)], my[std::size_t(b)]);
            g->setName(tr("merged token"));
        }
        // the linked selection, drawn over every point
        m_pcaSel = m_pcaPlot->addGraph();
        m_pcaSel->setLineStyle(QCPGraph::lsNone);
        m_pcaSel->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2),
                                                  QColor(255, 255, 255, 200), 9));
        m_pcaSel->setName(tr("selected"));
        m_pcaPlot->xAxis->setLabel(
            tr("PC 1 (%1 % of variance)").arg(100 * p->explained[0], 0, 'f', 1));
        m_pcaPlot->yAxis->setLabel(tr("PC 2 (%1 %)").arg(100 * p->explained[1], 0, 'f', 1));
        m_pcaPlot->rescaleAxes();
        m_pcaPlot->xAxis->ticker()->setTickCount(4);
        m_pcaPlot->yAxis->ticker()->setTickCount(5);
        m_pcaPlot->xAxis->scaleRange(1.08);
        m_pcaPlot->yAxis->scaleRange(1.08);
    }
    refreshSelection();
    replotWhenShown(m_pcaPlot);
    plotLayerEntropy(m_layerPlot, r, selectedLayer());
    m_layerPlot->legend->setVisible(false); // the selector names the highlighted layer
    replotWhenShown(m_layerPlot);
}

} // namespace studio
