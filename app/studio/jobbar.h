// The status bar's view of the JobOwner: the running job's label, a progress bar and Cancel.
// Merges show only when one runs past 300 ms (the live slider loop stays quiet); every other
// job shows at once.
#pragma once

#include "jobs.h"

#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;
class QTimer;

namespace studio {

class JobBar : public QWidget {
    Q_OBJECT
  public:
    JobBar(JobOwner* jobs, QWidget* parent = nullptr);
    quint64 shown() const { return m_id; } // the job on display, 0 when none
    QPushButton* cancelButton() const { return m_cancel; }
    QProgressBar* bar() const { return m_bar; }

  private:
    void show(quint64 id, const QString& label);

    JobOwner* m_jobs;
    QLabel* m_label;
    QProgressBar* m_bar;
    QPushButton* m_cancel;
    QTimer* m_delay;
    quint64 m_id = 0, m_pending = 0;
    QString m_pendingLabel;
};

} // namespace studio
