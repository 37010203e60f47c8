// The video timeline: scrubber, play/pause, frame steps, frame rate, token mode (tubelet T),
// and two plots over the frames: pipeline time per frame and merge flicker between
// consecutive units. It only shows; the main window drives the source and the runner.
#pragma once

#include <QWidget>

class QCustomPlot;
class QLabel;
class QSlider;
class QSpinBox;
class QToolButton;

namespace studio {

class TimelinePanel : public QWidget {
    Q_OBJECT
  public:
    explicit TimelinePanel(QWidget* parent = nullptr);

    void setVideo(qint64 frames, double fps, int tubelet);
    void setFrame(qint64 frame); // moves the scrubber without emitting frameRequested
    qint64 frame() const;
    void setPlaying(bool playing);
    bool playing() const { return m_playing; }
    int tubelet() const;
    // Series over the timeline (frame index on x); a new value for a frame replaces the old one.
    void addTiming(qint64 frame, double ms);
    void addFlicker(qint64 frame, double fraction);
    void clearSeries();
    int timingPoints() const;
    int flickerPoints() const;
    QCustomPlot* timePlot() const { return m_time; }
    QCustomPlot* flickerPlot() const { return m_flicker; }

  signals:
    void frameRequested(qint64 frame);
    void playToggled(bool playing);
    void tubeletChanged(int tubelet);

  protected:
    void changeEvent(QEvent* e) override;

  private:
    void updateLabel();
    void replot();

    QToolButton *m_play, *m_back, *m_forward;
    QSlider* m_slider;
    QLabel* m_label;
    QSpinBox* m_tubelet;
    QCustomPlot *m_time, *m_flicker;
    qint64 m_frames = 0;
    double m_fps = 0;
    bool m_playing = false;
};

} // namespace studio
