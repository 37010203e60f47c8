// A long job (video export, budget sweep) on a worker thread behind a modal progress dialog
// with Cancel; the GUI stays responsive.
#pragma once

#include "qmpp/videoexport.h" // Progress, Cancelled

#include <QString>

#include <functional>

class QWidget;

namespace studio {

enum class JobEnd { Done, Cancelled, Failed };

// Runs job(progress) on its own thread. The job reports (done, total) through `progress`; once
// Cancel is pressed (or `cancelAfter` >= 0 steps are done: tests) progress returns false and
// the job is expected to throw qmpp::Cancelled. Any other exception ends it as Failed with
// its message in `error`.
JobEnd runWithProgress(QWidget* parent, const QString& label, qint64 total,
                       const std::function<void(const qmpp::Progress&)>& job, QString* error,
                       qint64 cancelAfter = -1);

} // namespace studio
