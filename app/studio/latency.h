// `qmpp-studio --latency-bench N`: the interactive-speed benchmark. It moves the budget slider N
// times, each after the last change is on screen, and measures the time from the change to the
// repainted canvas (debounce included); meanwhile a 2 ms timer measures how long the UI thread
// is ever kept from its event loop. Prints JSON.
#pragma once

#include <QString>

namespace studio {
class MainWindow;
// Starts the benchmark once the window shows its first result; quits the application at the end
// after printing (and, if `jsonPath` is not empty, writing) the statistics.
void startLatencyBench(MainWindow* w, int changes, const QString& jsonPath);
} // namespace studio
