#include "textformat.h"

#include <QObject>
#include <cmath>

namespace studio {

QString formatDuration(double ms) {
    if (!std::isfinite(ms) || ms < 0) return QObject::tr("—");
    if (ms < 10) return QObject::tr("%1 ms").arg(ms, 0, 'f', 2);
    if (ms < 1000) return QObject::tr("%1 ms").arg(ms, 0, 'f', 1);
    if (ms < 60000) return QObject::tr("%1 s").arg(ms / 1000, 0, 'f', 2);
    const long long s = std::llround(ms / 1000);
    if (s < 3600) return QObject::tr("%1 min %2 s").arg(s / 60).arg(s % 60);
    return QObject::tr("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60, 2, 10, QChar('0'));
}

} // namespace studio
