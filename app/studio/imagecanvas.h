// The central canvas: the input picture under toggleable overlays, zoom (wheel) and pan (drag),
// hover details of a token, and click to highlight its whole group.
#pragma once

#include "overlays.h"
#include "runner.h"

#include <QWidget>

namespace studio {

class TokenSelection;

enum class Overlay { Saliency, Mask, Foreground, Clusters, Merged, Groups, Grid, Changed };

class ImageCanvas : public QWidget {
    Q_OBJECT
  public:
    explicit ImageCanvas(QWidget* parent = nullptr);

    void setInput(const StudioInput& input);
    // The next frame of the same video: zoom, pan and the last overlays stay until its result.
    void setFrame(const StudioInput& input);
    void setOutput(std::shared_ptr<const RunOutput> out);
    // The "changed since the pin" map (one pixel per token; null: none).
    void setChanged(const QImage& perToken);
    void setOverlay(Overlay o, bool on);
    bool overlay(Overlay o) const;
    void setOpacity(Overlay o, double opacity); // emits opacityChanged when it changes
    double opacity(Overlay o) const { return m_opacity[int(o)]; }
    static constexpr int kOverlays = 8;
    double zoom() const { return m_zoom; }
    QPointF offset() const { return m_offset; }
    // Zoom and pan set from outside (synchronized canvases); emits nothing.
    void setView(double zoom, QPointF offset);
    void fitToWindow();
    // Token under a widget position, or -1.
    long long tokenAt(const QPointF& pos) const;
    // The linked selection the canvas shows and sets (a click selects a token's group); the
    // canvas owns one of its own until given the window's.
    void setSelection(TokenSelection* selection);
    TokenSelection* selection() const { return m_selection; }
    // The group the selection is, or -1 (nothing, or not exactly one group).
    long long selectedGroup() const;
    void selectGroupOf(long long token);
    // A text describing a token (index, row/col, saliency, pi, mass, group, size, cosine).
    QString describe(long long token) const;
    // The canvas as shown (for export and screenshots).
    QImage render() const;

  signals:
    void tokenHovered(long long token, const QString& text);
    void groupSelected(long long group);
    void overlayToggled(studio::Overlay o, bool on);
    void opacityChanged(studio::Overlay o, double opacity);
    // The user zoomed (wheel) or panned (drag).
    void viewChanged(double zoom, QPointF offset);

  protected:
    void paintEvent(QPaintEvent*) override;
    void wheelEvent(QWheelEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mouseReleaseEvent(QMouseEvent* e) override;
    void resizeEvent(QResizeEvent*) override;

  private:
    void paintScene(QPainter& p) const;
    QPointF toImage(const QPointF& widgetPos) const;

    StudioInput m_input;
    Grid m_grid;
    QImage m_base;
    std::shared_ptr<const RunOutput> m_out;
    QImage m_changed;
    bool m_on[kOverlays] = {true, false, true, false, false, false, false, false};
    double m_opacity[kOverlays] = {0.6, 0.6, 1.0, 1.0, 1.0, 0.5, 0.4, 0.7};
    double m_zoom = 1.0;
    QPointF m_offset;
    bool m_fit = true;
    QPoint m_pressPos, m_lastPos;
    bool m_dragging = false;
    long long m_hover = -1;
    TokenSelection* m_selection; // never null
};

} // namespace studio
