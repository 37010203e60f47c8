// Helpers shared by the studio's tests (tst_studio, tst_modelpage).
#pragma once

#include "jobs.h"

#include <QObject>
#include <QTest>

namespace studio::test {

// Waits for job `id` of `jobs` to end; its end (Failed when it did not end in time: ten
// minutes, for the sanitizer build).
inline JobEnd waitJob(JobOwner* jobs, quint64 id, int ms = 600000) {
    JobEnd end = JobEnd::Failed;
    bool over = false;
    QObject guard;
    QObject::connect(jobs, &JobOwner::finished, &guard,
                     [&](quint64 which, const QString&, JobEnd e, const QString&) {
                         if (which == id) end = e, over = true;
                     });
    QTRY_LOOP_IMPL(over, ms, 10);
    return over ? end : JobEnd::Failed;
}

} // namespace studio::test
