#include "progressjob.h"

#include <QCoreApplication>
#include <QProgressDialog>

#include <atomic>
#include <chrono>
#include <thread>

namespace studio {

JobEnd runWithProgress(QWidget* parent, const QString& label, qint64 total,
                       const std::function<void(const qmpp::Progress&)>& job, QString* error,
                       qint64 cancelAfter) {
    QProgressDialog progress(label, QObject::tr("Cancel"), 0, int(total), parent);
    progress.setWindowModality(Qt::WindowModal);
    progress.setMinimumDuration(300);
    std::atomic<bool> cancel{false}, finished{false};
    std::atomic<qint64> done{0};
    JobEnd end = JobEnd::Done;
    QString message;
    std::thread worker([&] {
        try {
            job([&](qmpp::i64 d, qmpp::i64) {
                done = d;
                return !cancel.load();
            });
        } catch (const qmpp::Cancelled&) {
            end = JobEnd::Cancelled;
        } catch (const std::exception& e) {
            end = JobEnd::Failed;
            message = QString::fromUtf8(e.what());
        }
        finished = true;
    });
    while (!finished) {
        QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
        progress.setValue(int(done.load()));
        if (progress.wasCanceled() || (cancelAfter >= 0 && done.load() >= cancelAfter))
            cancel = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    worker.join();
    progress.reset();
    if (error) *error = message;
    return end;
}

} // namespace studio
