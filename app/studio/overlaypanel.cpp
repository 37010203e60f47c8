#include "overlaypanel.h"

#include <QCheckBox>
#include <QGridLayout>
#include <QGroupBox>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QVBoxLayout>

#include <cmath>

namespace studio {

OverlayPanel::OverlayPanel(ImageCanvas* canvas, QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    m_info = new QLabel(tr("No input"), this);
    m_info->setWordWrap(true);
    m_info->setTextInteractionFlags(Qt::TextSelectableByMouse);
    v->addWidget(m_info);
    auto* box = new QGroupBox(tr("Overlays"), this);
    auto* g = new QGridLayout(box);
    const std::pair<Overlay, QString> items[] = {
        {Overlay::Saliency, tr("Saliency heatmap")},
        {Overlay::Mask, tr("Gumbel mask π")},
        {Overlay::Foreground, tr("Foreground tokens")},
        {Overlay::Clusters, tr("Clusters (mean colour + edges)")},
        {Overlay::Groups, tr("Cluster assignment colours")},
        {Overlay::Merged, tr("Merged-token map")},
        {Overlay::Grid, tr("Patch grid")},
        {Overlay::Changed, tr("Changed group since the pin")}};
    int row = 0;
    for (const auto& [o, name] : items) {
        auto* cb = new QCheckBox(name, box);
        cb->setChecked(canvas->overlay(o));
        cb->setObjectName(QStringLiteral("overlay%1").arg(int(o)));
        auto* op = new QSlider(Qt::Horizontal, box);
        op->setRange(0, 100);
        op->setValue(o == Overlay::Saliency || o == Overlay::Mask ? 60
                     : o == Overlay::Groups                       ? 50
                     : o == Overlay::Grid                         ? 40
                     : o == Overlay::Changed                      ? 70
                                                                  : 100);
        op->setToolTip(tr("Opacity"));
        op->setMinimumWidth(80);
        op->setMaximumWidth(140);
        g->addWidget(cb, row, 0);
        g->addWidget(op, row, 1);
        ++row;
        connect(cb, &QCheckBox::toggled, canvas,
                [canvas, o = o](bool on) { canvas->setOverlay(o, on); });
        connect(canvas, &ImageCanvas::overlayToggled, cb, [cb, o = o](Overlay which, bool on) {
            if (which == o) cb->setChecked(on); // toggled elsewhere (command line, tests)
        });
        connect(op, &QSlider::valueChanged, canvas,
                [canvas, o = o](int val) { canvas->setOpacity(o, val / 100.0); });
        connect(canvas, &ImageCanvas::opacityChanged, op, [op, o = o](Overlay which, double v) {
            if (which != o) return; // set elsewhere (a project file)
            const QSignalBlocker quiet(op);
            op->setValue(int(std::lround(v * 100)));
        });
    }
    v->addWidget(box);
    auto* fit = new QPushButton(tr("Fit to window"), this);
    connect(fit, &QPushButton::clicked, canvas, &ImageCanvas::fitToWindow);
    v->addWidget(fit);
    auto* hint = new QLabel(tr("Wheel: zoom · drag: pan · click: highlight a token's group"), this);
    hint->setWordWrap(true);
    hint->setStyleSheet("color: gray");
    v->addWidget(hint);
    v->addStretch(1);
}

void OverlayPanel::setInputDescription(const QString& text) {
    m_info->setText(text);
}

} // namespace studio
