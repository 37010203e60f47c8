#include "colormap.h"

#include "qmpp/overlay.h"
#include "qmpp/views.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

namespace studio {

const QCPColorGradient& viridis() {
    static const QCPColorGradient g = [] {
        QCPColorGradient v;
        v.clearColorStops();
        // viridis sampled at nine points (matplotlib's table); QCPColorGradient interpolates.
        const QColor stops[] = {QColor(68, 1, 84),    QColor(71, 44, 122),  QColor(59, 81, 139),
                                QColor(44, 113, 142), QColor(33, 144, 141), QColor(39, 173, 129),
                                QColor(92, 200, 99),  QColor(170, 220, 50), QColor(253, 231, 37)};
        for (int i = 0; i < 9; ++i)
            v.setColorStopAt(i / 8.0, stops[i]);
        v.setColorInterpolation(QCPColorGradient::ciRGB);
        v.setLevelCount(256);
        return v;
    }();
    return g;
}

QRgb viridisAt(double v) {
    return qRgb(0, 0, 0) | qmpp::viridisRgb(v); // core's viridis, opaque
}

QColor groupColour(long long g) {
    return QColor(QRgb(qmpp::groupRgb(g)));
}

} // namespace studio
