#include "tokenstrip.h"

#include "colormap.h"
#include "selection.h"

#include <QMouseEvent>
#include <QPainter>
#include <QPainterPath>
#include <QToolTip>

namespace studio {

namespace {
constexpr int kPadX = 5, kPadY = 3, kGap = 6, kLineGap = 10, kMargin = 8;
}

TokenStrip::TokenStrip(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Preferred);
}

void TokenStrip::setTokens(const QStringList& text, const std::vector<float>& saliency,
                           const std::vector<qmpp::i64>& labels) {
    const qmpp::i64 n = qmpp::i64(saliency.size());
    m_text = text;
    if (m_text.isEmpty())
        for (qmpp::i64 i = 0; i < n; ++i)
            m_text << QString::number(i);
    m_saliency = saliency;
    m_labels = labels;
    m_colours.clear();
    m_notes.clear();
    m_groupSize.assign(std::size_t(*std::max_element(labels.begin(), labels.end()) + 1), 0);
    for (qmpp::i64 l : labels)
        if (l >= 0) ++m_groupSize[std::size_t(l)];
    m_spans = qmpp::mergedSpans(labels);
    m_inSpan.assign(labels.size(), false);
    for (const auto& sp : m_spans)
        for (qmpp::i64 i = sp.begin; i < sp.end; ++i)
            m_inSpan[std::size_t(i)] = true;
    m_hover = -1;
    layout(width() > 0 ? width() : 800, true);
    updateGeometry();
    update();
}

void TokenStrip::setBackgrounds(const std::vector<QRgb>& colours, const QStringList& notes) {
    m_colours = colours;
    m_notes = notes;
    update();
}

void TokenStrip::clear() {
    m_text.clear();
    m_colours.clear();
    m_notes.clear();
    m_saliency.clear();
    m_labels.clear();
    m_spans.clear();
    m_rects.clear();
    updateGeometry();
    update();
}

QColor TokenStrip::background(qmpp::i64 i) const {
    if (m_labels[std::size_t(i)] < 0) return QColor(40, 40, 40); // dropped
    if (std::size_t(i) < m_colours.size()) return QColor(m_colours[std::size_t(i)]);
    return QColor(viridisAt(m_saliency[std::size_t(i)]));
}

QString TokenStrip::describe(qmpp::i64 i) const {
    const qmpp::i64 g = m_labels[std::size_t(i)];
    QString s = i < m_notes.size()
                    ? tr("token %1 “%2” · %3").arg(i).arg(m_text.at(int(i)), m_notes.at(int(i)))
                    : tr("token %1 “%2” · saliency %3")
                          .arg(i)
                          .arg(m_text.at(int(i)))
                          .arg(m_saliency[std::size_t(i)], 0, 'f', 3);
    if (g < 0) return s + tr(" · dropped");
    return s + tr(" · group %1 (%2 tokens)").arg(g).arg(m_groupSize[std::size_t(g)]);
}

int TokenStrip::layout(int w, bool store) const {
    const QFontMetrics fm(font());
    const int h = fm.height() + 2 * kPadY;
    int x = kMargin, y = kMargin;
    if (store) m_rects.resize(std::size_t(m_text.size()));
    for (int i = 0; i < m_text.size(); ++i) {
        const int tw = fm.horizontalAdvance(m_text.at(i)) + 2 * kPadX;
        if (x > kMargin && x + tw > w - kMargin) {
            x = kMargin;
            y += h + kLineGap;
        }
        if (store) m_rects[std::size_t(i)] = QRect(x, y, tw, h);
        x += tw + kGap;
    }
    return m_text.isEmpty() ? 0 : y + h + kMargin;
}

int TokenStrip::heightForWidth(int w) const {
    return layout(w, false);
}

QSize TokenStrip::sizeHint() const {
    return QSize(600, std::max(60, layout(width() > 0 ? width() : 600, false)));
}

void TokenStrip::resizeEvent(QResizeEvent*) {
    layout(width(), true);
    const int h = heightForWidth(width());
    if (minimumHeight() != h) setMinimumHeight(h);
}

void TokenStrip::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(rect(), palette().base());
    if (m_text.isEmpty()) {
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(rect(), Qt::AlignCenter, tr("Open token embeddings to see them here"));
        return;
    }
    if (m_rects.size() != std::size_t(m_text.size())) layout(width(), true);
    // spans first, behind the tokens: a frame in the group's colour around each line's part
    for (const auto& s : m_spans) {
        const QColor c = groupColour(s.group);
        QRect run;
        auto flush = [&](bool first, bool last) {
            if (run.isNull()) return;
            const QRect r = run.adjusted(-3, -2, 3, 2);
            p.setPen(QPen(c, 2));
            p.setBrush(QColor(c.red(), c.green(), c.blue(), 60));
            p.drawRoundedRect(r, 4, 4);
            // brackets where the span opens and closes
            p.setPen(QPen(c, 3));
            if (first)
                p.drawLine(r.left(), r.top(), r.left(), r.bottom()),
                    p.drawLine(r.left(), r.top(), r.left() + 5, r.top()),
                    p.drawLine(r.left(), r.bottom(), r.left() + 5, r.bottom());
            if (last)
                p.drawLine(r.right(), r.top(), r.right(), r.bottom()),
                    p.drawLine(r.right(), r.top(), r.right() - 5, r.top()),
                    p.drawLine(r.right(), r.bottom(), r.right() - 5, r.bottom());
        };
        bool first = true;
        for (qmpp::i64 i = s.begin; i < s.end; ++i) {
            const QRect r = m_rects[std::size_t(i)];
            if (!run.isNull() && r.top() != run.top()) { // wrapped to the next line
                flush(first, false);
                first = false;
                run = QRect();
            }
            run = run.isNull() ? r : run.united(r);
        }
        flush(first, true);
    }
    for (int i = 0; i < m_text.size(); ++i) {
        const QRect r = m_rects[std::size_t(i)];
        const QColor bg = background(i);
        p.setPen(i == m_hover ? QPen(palette().color(QPalette::Highlight), 2) : Qt::NoPen);
        p.setBrush(bg);
        p.drawRoundedRect(r, 3, 3);
        // a lone member of a larger group: underlined in the group's colour
        const qmpp::i64 g = m_labels[std::size_t(i)];
        if (g >= 0 && m_groupSize[std::size_t(g)] > 1 && !inSpan(i)) {
            p.setPen(QPen(groupColour(g), 3));
            p.drawLine(r.left() + 2, r.bottom() + 3, r.right() - 2, r.bottom() + 3);
        }
        p.setPen(bg.lightnessF() > 0.55 ? Qt::black : Qt::white);
        p.drawText(r, Qt::AlignCenter, m_text.at(i));
    }
    // the linked selection: a double frame (dark outside, light inside) reads on any background
    if (m_selection)
        for (qmpp::i64 i : m_selection->tokens()) {
            if (i >= qmpp::i64(m_rects.size())) break;
            const QRect r = m_rects[std::size_t(i)];
            p.setBrush(Qt::NoBrush);
            p.setPen(QPen(Qt::black, 3));
            p.drawRoundedRect(r.adjusted(-2, -2, 2, 2), 4, 4);
            p.setPen(QPen(Qt::white, 1.5));
            p.drawRoundedRect(r.adjusted(-1, -1, 1, 1), 3, 3);
        }
}

void TokenStrip::setSelection(const TokenSelection* selection) {
    m_selection = selection;
    connect(selection, &TokenSelection::changed, this, [this] { update(); });
    update();
}

qmpp::i64 TokenStrip::tokenAt(const QPoint& pos) const {
    for (std::size_t i = 0; i < m_rects.size(); ++i)
        if (m_rects[i].contains(pos)) return qmpp::i64(i);
    return -1;
}

void TokenStrip::mousePressEvent(QMouseEvent* e) {
    if (e->button() == Qt::LeftButton && !m_text.isEmpty())
        emit tokenClicked(tokenAt(e->position().toPoint()));
}

bool TokenStrip::inSpan(qmpp::i64 i) const {
    return m_inSpan[std::size_t(i)];
}

void TokenStrip::mouseMoveEvent(QMouseEvent* e) {
    const qmpp::i64 hit = tokenAt(e->position().toPoint());
    if (hit != m_hover) {
        m_hover = hit;
        update();
        if (hit >= 0) {
            emit tokenHovered(hit, describe(hit));
            QToolTip::showText(e->globalPosition().toPoint(), describe(hit), this);
        }
    }
}

} // namespace studio
