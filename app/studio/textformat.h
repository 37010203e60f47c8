// Numbers as the studio writes them for people.
#pragma once

#include <QString>

namespace studio {

// 0.42 ms, 38.5 ms, 2.41 s, 4 min 18 s, 1 h 02 min.
QString formatDuration(double ms);

} // namespace studio
