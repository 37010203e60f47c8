#include "timelinepanel.h"

#include "plotstyle.h"

#include <QEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSlider>
#include <QSpinBox>
#include <QStyle>
#include <QToolButton>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace studio {

namespace {

QCustomPlot* seriesPlot(QWidget* parent, const QString& yLabel, const QColor& colour) {
    auto* p = new QCustomPlot(parent);
    p->setMinimumHeight(120);
    p->addGraph();
    p->graph(0)->setPen(QPen(colour, 1.5));
    p->graph(0)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 3));
    p->xAxis->setLabel(QObject::tr("frame"));
    p->yAxis->setLabel(yLabel);
    auto* cursor = new QCPItemStraightLine(p); // the frame shown
    cursor->setPen(QPen(QColor(208, 64, 48), 1, Qt::DashLine));
    cursor->point1->setCoords(0, 0);
    cursor->point2->setCoords(0, 1);
    p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    return p;
}

void setPoint(QCustomPlot* p, qint64 frame, double v) {
    p->graph(0)->data()->remove(double(frame));
    p->graph(0)->addData(double(frame), v);
}

} // namespace

TimelinePanel::TimelinePanel(QWidget* parent) : QWidget(parent) {
    auto* controls = new QHBoxLayout;
    auto button = [this](QStyle::StandardPixmap icon, const QString& tip) {
        auto* b = new QToolButton(this);
        b->setIcon(style()->standardIcon(icon));
        b->setToolTip(tip);
        return b;
    };
    m_back = button(QStyle::SP_MediaSeekBackward, tr("Previous frame"));
    m_play = button(QStyle::SP_MediaPlay, tr("Play / pause (Space)"));
    m_play->setShortcut(Qt::Key_Space);
    m_forward = button(QStyle::SP_MediaSeekForward, tr("Next frame"));
    m_slider = new QSlider(Qt::Horizontal, this);
    m_slider->setToolTip(
        tr("Scrub through the video; each shown frame is merged with the current parameters"));
    m_label = new QLabel(this);
    m_label->setMinimumWidth(190);
    m_tubelet = new QSpinBox(this);
    m_tubelet->setRange(1, 16);
    m_tubelet->setPrefix(tr("tubelet T = "));
    m_tubelet->setToolTip(
        tr("Tokens are tubelets of T frames × P × P (T = 1: per-frame patches); groups "
           "then span the T frames of a unit"));
    for (QWidget* w : std::initializer_list<QWidget*>{m_back, m_play, m_forward})
        controls->addWidget(w);
    controls->addWidget(m_label, 1);
    controls->addWidget(m_tubelet);

    m_time = seriesPlot(this, tr("pipeline ms"), QColor(59, 82, 139));
    m_flicker = seriesPlot(this, tr("flicker"), QColor(208, 120, 40));
    m_flicker->yAxis->setRange(0, 1);
    m_flicker->setToolTip(
        tr("Fraction of tokens whose group changed from the previous unit, groups matched "
           "one-to-one by overlap: high values mean the merge flickers"));
    auto* plots = new QHBoxLayout;
    plots->addWidget(m_time);
    plots->addWidget(m_flicker);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_slider);
    layout->addLayout(controls);
    layout->addLayout(plots, 1);

    connect(m_slider, &QSlider::valueChanged, this, [this](int v) {
        updateLabel();
        emit frameRequested(v);
    });
    connect(m_back, &QToolButton::clicked, this,
            [this] { m_slider->setValue(m_slider->value() - 1); });
    connect(m_forward, &QToolButton::clicked, this,
            [this] { m_slider->setValue(m_slider->value() + 1); });
    connect(m_play, &QToolButton::clicked, this, [this] {
        setPlaying(!m_playing);
        emit playToggled(m_playing);
    });
    connect(m_tubelet, qOverload<int>(&QSpinBox::valueChanged), this,
            &TimelinePanel::tubeletChanged);
    stylePlot(m_time, palette());
    stylePlot(m_flicker, palette());
}

void TimelinePanel::setVideo(qint64 frames, double fps, int tubelet) {
    m_frames = frames;
    m_fps = fps;
    const QSignalBlocker b1(m_slider), b2(m_tubelet);
    m_slider->setRange(0, int(std::max<qint64>(0, frames - 1)));
    m_slider->setValue(0);
    m_tubelet->setValue(tubelet);
    for (QCustomPlot* p : {m_time, m_flicker})
        p->xAxis->setRange(0, double(std::max<qint64>(1, frames - 1)));
    clearSeries();
    setPlaying(false);
    updateLabel();
}

void TimelinePanel::setFrame(qint64 frame) {
    const QSignalBlocker block(m_slider);
    m_slider->setValue(int(frame));
    updateLabel();
    replot();
}

qint64 TimelinePanel::frame() const {
    return m_slider->value();
}
int TimelinePanel::tubelet() const {
    return m_tubelet->value();
}

void TimelinePanel::setPlaying(bool playing) {
    m_playing = playing;
    m_play->setIcon(style()->standardIcon(playing ? QStyle::SP_MediaPause : QStyle::SP_MediaPlay));
}

void TimelinePanel::addTiming(qint64 frame, double ms) {
    setPoint(m_time, frame, ms);
    bool found = false;
    const QCPRange r = m_time->graph(0)->getValueRange(found);
    if (found) m_time->yAxis->setRange(0, r.upper * 1.15);
    replot();
}

void TimelinePanel::addFlicker(qint64 frame, double fraction) {
    setPoint(m_flicker, frame, fraction);
    replot();
}

void TimelinePanel::clearSeries() {
    for (QCustomPlot* p : {m_time, m_flicker})
        p->graph(0)->data()->clear();
    replot();
}

int TimelinePanel::timingPoints() const {
    return m_time->graph(0)->dataCount();
}
int TimelinePanel::flickerPoints() const {
    return m_flicker->graph(0)->dataCount();
}

void TimelinePanel::updateLabel() {
    m_label->setText(tr("frame %1 / %2 · %3 fps")
                         .arg(m_slider->value())
                         .arg(m_frames)
                         .arg(m_fps > 0 ? QString::number(m_fps, 'f', 2) : tr("unknown")));
}

void TimelinePanel::replot() {
    for (QCustomPlot* p : {m_time, m_flicker}) {
        if (auto* cursor = qobject_cast<QCPItemStraightLine*>(p->item(0))) {
            cursor->point1->setCoords(double(frame()), 0);
            cursor->point2->setCoords(double(frame()), 1);
        }
        p->replot(QCustomPlot::rpQueuedReplot);
    }
}

void TimelinePanel::changeEvent(QEvent* e) {
    if (e->type() == QEvent::PaletteChange) {
        stylePlot(m_time, palette());
        stylePlot(m_flicker, palette());
    }
    QWidget::changeEvent(e);
}

} // namespace studio
