#include "jobbar.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTimer>

namespace studio {

JobBar::JobBar(JobOwner* jobs, QWidget* parent) : QWidget(parent), m_jobs(jobs) {
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(0, 0, 0, 0);
    m_label = new QLabel(this);
    m_bar = new QProgressBar(this);
    m_bar->setMaximumWidth(160);
    m_bar->setTextVisible(false);
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setToolTip(tr("Stop this job; what it has not finished is not shown"));
    l->addWidget(m_label);
    l->addWidget(m_bar);
    l->addWidget(m_cancel);
    setVisible(false);
    m_delay = new QTimer(this);
    m_delay->setSingleShot(true);
    m_delay->setInterval(300);
    connect(m_delay, &QTimer::timeout, this, [this] {
        if (m_pending && m_jobs->busy(QStringLiteral("merge"))) show(m_pending, m_pendingLabel);
    });
    connect(m_cancel, &QPushButton::clicked, this, [this] {
        if (m_id) m_jobs->cancel(m_id);
    });
    connect(jobs, &JobOwner::started, this,
            [this](quint64 id, const QString& lane, const QString& label) {
                if (lane == QLatin1String("merge")) { // quiet unless it takes a while
                    m_pending = id;
                    m_pendingLabel = label;
                    if (!m_id) m_delay->start(); // a job on display stays
                    return;
                }
                show(id, label);
            });
    connect(jobs, &JobOwner::progressed, this, [this](quint64 id, qint64 done, qint64 total) {
        if (id != m_id) return;
        m_bar->setRange(0, int(std::max<qint64>(total, 1)));
        m_bar->setValue(int(done));
    });
    connect(jobs, &JobOwner::finished, this,
            [this](quint64 id, const QString&, JobEnd, const QString&) {
                if (id == m_pending) m_pending = 0;
                if (id != m_id) return;
                m_id = 0;
                setVisible(false);
            });
}

void JobBar::show(quint64 id, const QString& label) {
    m_id = id;
    m_label->setText(label + QStringLiteral("…"));
    m_bar->setRange(0, 0); // busy until the first progress
    setVisible(true);
}

} // namespace studio
