#include "imagecanvas.h"

#include "colormap.h"
#include "qmpp/ops.h"
#include "selection.h"

#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

namespace studio {

ImageCanvas::ImageCanvas(QWidget* parent) : QWidget(parent), m_selection(nullptr) {
    setSelection(new TokenSelection(this));
    setMouseTracking(true);
    setMinimumSize(320, 240);
    setAutoFillBackground(true);
    QPalette pal = palette();
    pal.setColor(QPalette::Window, QColor(32, 32, 36));
    setPalette(pal);
}

void ImageCanvas::setInput(const StudioInput& input) {
    m_input = input;
    m_grid = gridOf(input);
    m_base = baseImage(input);
    m_out.reset();
    m_selection->clear();
    if (m_hover >= 0) emit tokenHovered(-1, QString());
    m_hover = -1;
    m_fit = true;
    fitToWindow();
}

void ImageCanvas::setFrame(const StudioInput& input) {
    const Grid g = gridOf(input);
    if (!m_input.loaded || g.rows != m_grid.rows || g.cols != m_grid.cols ||
        g.cell != m_grid.cell) {
        setInput(input);
        return;
    }
    m_input = input;
    m_base = baseImage(input);
    update();
}

void ImageCanvas::setOutput(std::shared_ptr<const RunOutput> out) {
    m_out = std::move(out);
    if (m_out && !m_selection->isEmpty() && m_selection->tokens().back() >= m_out->result.n)
        m_selection->clear();
    update();
}

void ImageCanvas::setOverlay(Overlay o, bool on) {
    if (m_on[int(o)] == on) return;
    m_on[int(o)] = on;
    emit overlayToggled(o, on);
    update();
}
bool ImageCanvas::overlay(Overlay o) const {
    return m_on[int(o)];
}
void ImageCanvas::setOpacity(Overlay o, double opacity) {
    if (m_opacity[int(o)] == opacity) return;
    m_opacity[int(o)] = opacity;
    update();
    emit opacityChanged(o, opacity);
}

void ImageCanvas::fitToWindow() {
    if (m_base.isNull()) return;
    m_zoom = std::min(double(width()) / m_base.width(), double(height()) / m_base.height());
    m_offset =
        QPointF((width() - m_base.width() * m_zoom) / 2, (height() - m_base.height() * m_zoom) / 2);
    update();
}

void ImageCanvas::resizeEvent(QResizeEvent*) {
    if (m_fit) fitToWindow();
}

QPointF ImageCanvas::toImage(const QPointF& w) const {
    return (w - m_offset) / m_zoom;
}

long long ImageCanvas::tokenAt(const QPointF& pos) const {
    if (!m_input.loaded) return -1;
    const QPointF ip = toImage(pos);
    if (ip.x() < 0 || ip.y() < 0) return -1;
    const int c = int(ip.x()) / m_grid.cell, r = int(ip.y()) / m_grid.cell;
    if (c >= m_grid.cols || r >= m_grid.rows) return -1;
    const long long i = (long long)r * m_grid.cols + c;
    return i < m_input.tokens().n ? i : -1;
}

void ImageCanvas::setSelection(TokenSelection* selection) {
    if (m_selection && m_selection->parent() == this) delete m_selection;
    m_selection = selection;
    connect(m_selection, &TokenSelection::changed, this, [this] { update(); });
    update();
}

long long ImageCanvas::selectedGroup() const {
    if (!m_out || m_selection->isEmpty()) return -1;
    const auto& r = m_out->result;
    const long long g = r.labels[std::size_t(m_selection->tokens().front())];
    if (g < 0 || qmpp::i64(m_selection->tokens().size()) != r.groupSizes[std::size_t(g)]) return -1;
    for (qmpp::i64 t : m_selection->tokens())
        if (r.labels[std::size_t(t)] != g) return -1;
    return g;
}

void ImageCanvas::selectGroupOf(long long token) {
    if (!m_out || token < 0) {
        m_selection->clear();
    } else {
        const long long g = m_out->result.labels[std::size_t(token)];
        m_selection->setTokens(TokenSelection::groupOf(m_out->result, token),
                               g < 0 ? tr("token %1 (dropped)").arg(token) : tr("group %1").arg(g));
    }
    emit groupSelected(selectedGroup());
}

QString ImageCanvas::describe(long long i) const {
    if (!m_out || i < 0) return {};
    const auto& r = m_out->result;
    const auto& t = m_input.tokens();
    const long long g = r.labels[i];
    QString s = tr("token %1 (row %2, col %3)").arg(i).arg(i / m_grid.cols).arg(i % m_grid.cols);
    if (!t.labels.empty()) s += QStringLiteral(" “%1”").arg(QString::fromStdString(t.labels[i]));
    s += tr("\nsaliency %1   π %2   mass %3")
             .arg(r.saliency[i], 0, 'f', 4)
             .arg(r.pi[i], 0, 'g', 4)
             .arg(r.mass[i], 0, 'g', 4);
    if (g >= 0) {
        const double cosv = qmpp::cosine(&t.x[i * t.d], &r.merged[g * t.d], t.d);
        s += tr("\ngroup %1 of %2, %3 tokens   cos to merged %4")
                 .arg(g)
                 .arg(r.k)
                 .arg(r.groupSizes[g])
                 .arg(cosv, 0, 'f', 4);
    } else {
        s += tr("\ndropped");
    }
    if (std::binary_search(r.foreground.begin(), r.foreground.end(), i)) s += tr("   foreground");
    return s;
}

void ImageCanvas::setChanged(const QImage& perToken) {
    m_changed = perToken;
    update();
}

void ImageCanvas::paintScene(QPainter& p) const {
    if (m_base.isNull()) return;
    const QRectF img(0, 0, m_base.width(), m_base.height());
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(img, m_base);
    if (!m_out) return;
    auto layer = [&](Overlay o, const QImage& im) {
        if (!m_on[int(o)] || im.isNull()) return;
        p.setOpacity(m_opacity[int(o)]);
        // token-resolution maps are stretched with nearest-neighbour sampling: one block a token
        p.drawImage(QRectF(0, 0, m_grid.cols * m_grid.cell, m_grid.rows * m_grid.cell), im);
        p.setOpacity(1.0);
    };
    layer(Overlay::Merged, m_out->merged);
    layer(Overlay::Clusters, m_out->clusters);
    layer(Overlay::Groups, m_out->groups);
    layer(Overlay::Saliency, m_out->saliency);
    layer(Overlay::Mask, m_out->mask);
    layer(Overlay::Changed, m_changed);
    const auto& r = m_out->result;
    const double cell = m_grid.cell;
    if (m_on[int(Overlay::Grid)]) {
        p.setOpacity(m_opacity[int(Overlay::Grid)]);
        p.setPen(QPen(Qt::white, 0));
        for (int c = 0; c <= m_grid.cols; ++c)
            p.drawLine(QPointF(c * cell, 0), QPointF(c * cell, m_grid.rows * cell));
        for (int rr = 0; rr <= m_grid.rows; ++rr)
            p.drawLine(QPointF(0, rr * cell), QPointF(m_grid.cols * cell, rr * cell));
        p.setOpacity(1.0);
    }
    if (m_on[int(Overlay::Foreground)]) {
        p.setOpacity(m_opacity[int(Overlay::Foreground)]);
        p.setPen(QPen(QColor(255, 80, 60), 1.5 / m_zoom));
        p.setBrush(Qt::NoBrush);
        for (long long i : r.foreground)
            p.drawRect(QRectF((i % m_grid.cols) * cell + 1, (i / m_grid.cols) * cell + 1, cell - 2,
                              cell - 2));
        p.setOpacity(1.0);
    }
    if (!m_selection->isEmpty()) {
        p.setPen(QPen(Qt::white, 2.5 / m_zoom));
        p.setBrush(QColor(255, 255, 255, 60));
        for (long long i : m_selection->tokens())
            if (i < r.n)
                p.drawRect(QRectF((i % m_grid.cols) * cell, (i / m_grid.cols) * cell, cell, cell));
    }
    if (m_hover >= 0) {
        p.setPen(QPen(Qt::yellow, 2.0 / m_zoom));
        p.setBrush(Qt::NoBrush);
        p.drawRect(
            QRectF((m_hover % m_grid.cols) * cell, (m_hover / m_grid.cols) * cell, cell, cell));
    }
}

void ImageCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.translate(m_offset);
    p.scale(m_zoom, m_zoom);
    paintScene(p);
    p.resetTransform();
    // colour bar of the heatmap in view (viridis, 0 at the bottom)
    const bool sal = m_out && m_on[int(Overlay::Saliency)], pi = m_out && m_on[int(Overlay::Mask)];
    if (sal || pi) {
        const QRect bar(width() - 34, 30, 14, std::min(220, height() - 60));
        for (int y = 0; y < bar.height(); ++y) {
            p.setPen(QColor::fromRgb(viridisAt(1.0 - double(y) / std::max(1, bar.height() - 1))));
            p.drawLine(bar.left(), bar.top() + y, bar.right(), bar.top() + y);
        }
        p.setPen(Qt::white);
        p.drawRect(bar.adjusted(0, 0, -1, -1));
        const QString top = sal ? QStringLiteral("1")
                                : QString::number(m_out->result.pi.empty()
                                                      ? 0.0
                                                      : *std::max_element(m_out->result.pi.begin(),
                                                                          m_out->result.pi.end()),
                                                  'g', 2);
        p.drawText(QRect(bar.left() - 50, bar.top() - 4, 46, 14), Qt::AlignRight, top);
        p.drawText(QRect(bar.left() - 50, bar.bottom() - 10, 46, 14), Qt::AlignRight,
                   QStringLiteral("0"));
        p.drawText(QRect(bar.left() - 80, 8, 100, 16), Qt::AlignRight,
                   sal ? tr("saliency") : tr("mask π"));
    }
    if (!m_input.loaded) {
        p.setPen(Qt::lightGray);
        p.drawText(rect(), Qt::AlignCenter,
                   tr("Open an image or a file of embeddings (File › Open, or drop it here)"));
    }
}

QImage ImageCanvas::render() const {
    QImage out(m_base.size(), QImage::Format_RGB32);
    out.fill(Qt::black);
    QPainter p(&out);
    paintScene(p);
    return out;
}

void ImageCanvas::wheelEvent(QWheelEvent* e) {
    const double factor = std::pow(1.0015, e->angleDelta().y());
    const QPointF at = e->position();
    const QPointF before = toImage(at);
    m_zoom = std::clamp(m_zoom * factor, 0.05, 64.0);
    m_offset = at - before * m_zoom; // keep the point under the cursor in place
    m_fit = false;
    update();
    emit viewChanged(m_zoom, m_offset);
}

void ImageCanvas::setView(double zoom, QPointF offset) {
    m_zoom = std::clamp(zoom, 0.05, 64.0);
    m_offset = offset;
    m_fit = false;
    update();
}

void ImageCanvas::mousePressEvent(QMouseEvent* e) {
    m_pressPos = m_lastPos = e->pos();
    m_dragging = false;
}

void ImageCanvas::mouseMoveEvent(QMouseEvent* e) {
    if (e->buttons() & Qt::LeftButton) {
        if ((e->pos() - m_pressPos).manhattanLength() > 3) m_dragging = true;
        if (m_dragging) {
            m_offset += e->pos() - m_lastPos;
            m_fit = false;
            update();
            emit viewChanged(m_zoom, m_offset);
        }
        m_lastPos = e->pos();
        return;
    }
    const long long t = tokenAt(e->position());
    if (t != m_hover) {
        m_hover = t;
        const QString text = describe(t);
        emit tokenHovered(t, text);
        if (!text.isEmpty())
            QToolTip::showText(e->globalPosition().toPoint(), text, this);
        else
            QToolTip::hideText();
        update();
    }
}

void ImageCanvas::mouseReleaseEvent(QMouseEvent* e) {
    if (!m_dragging && e->button() == Qt::LeftButton) selectGroupOf(tokenAt(e->position()));
    m_dragging = false;
}

} // namespace studio
