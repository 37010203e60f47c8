// The input dock: what is loaded, and a toggle and an opacity for each overlay.
#pragma once

#include "imagecanvas.h"

#include <QWidget>

class QLabel;

namespace studio {

class OverlayPanel : public QWidget {
    Q_OBJECT
  public:
    explicit OverlayPanel(ImageCanvas* canvas, QWidget* parent = nullptr);
    void setInputDescription(const QString& text);

  private:
    QLabel* m_info;
};

} // namespace studio
