// qmpp-studio [FILE] [--screenshot PNG]: opens FILE (or the bundled sample photo) and merges it
// live. --screenshot grabs the window after the first result and exits (docs, checks).
#include "latency.h"
#include "mainwindow.h"

#include "qmpp/engine.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include <cstdlib>
#include <memory>
#include <unistd.h>

int main(int argc, char** argv) {
    // The engine's worker threads sleep between parallel regions instead of spinning: on a
    // desktop they share the cores with this window and the display server. The OpenMP runtime
    // reads the policy once, as it loads, so the studio sets it and starts itself again (the
    // rerun's median falls from 23 to 21 ms of merge for a 496 x 352 photo on 2 cores).
    if (!std::getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0)
        execv("/proc/self/exe", argv); // returns only on failure: carry on as we are
    QApplication app(argc, argv);
    Q_INIT_RESOURCE(studio); // the bundled sample lives in the studio library's resources
    QApplication::setOrganizationName("QuickMerge");
    QApplication::setApplicationName("QuickMerge++ Studio");
    QApplication::setApplicationVersion(qmpp::kVersion);
    QCommandLineParser parser;
    parser.setApplicationDescription("QuickMerge++ Studio: see and measure token merging");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(
        "file",
        "image (png, jpg, ...), video (mp4, avi, mkv) or embeddings (.npy, .safetensors) to open");
    QCommandLineOption shot(
        "screenshot", "save a screenshot of the window after the first result, then quit", "png");
    parser.addOption(shot);
    QCommandLineOption overlays(
        "overlays",
        "overlays to show: comma-separated from saliency, mask, foreground, clusters, "
        "groups, merged, grid (default saliency,foreground)",
        "list");
    parser.addOption(overlays);
    QCommandLineOption patch("patch", "image patch size (default: the last one used, 16 at first)",
                             "P");
    parser.addOption(patch);
    QCommandLineOption play("play", "play a video from its first frame once it is open");
    parser.addOption(play);
    QCommandLineOption latency(
        "latency-bench",
        "move the budget slider N times and print the change-to-screen latency as JSON, then quit",
        "N");
    parser.addOption(latency);
    QCommandLineOption latencyJson("latency-json", "also write the latency statistics to this file",
                                   "file");
    parser.addOption(latencyJson);
    parser.process(app);

    studio::MainWindow w;
    if (parser.isSet(overlays)) {
        const QStringList names = {"saliency", "mask",   "foreground", "clusters",
                                   "merged",   "groups", "grid"};
        const QStringList want = parser.value(overlays).split(',', Qt::SkipEmptyParts);
        for (const QString& n : want)
            if (!names.contains(n.trimmed())) {
                fprintf(stderr, "qmpp-studio: unknown overlay '%s' (expected one of %s)\n",
                        qPrintable(n), qPrintable(names.join(", ")));
                return 2;
            }
        for (int i = 0; i < names.size(); ++i)
            w.canvas()->setOverlay(studio::Overlay(i), want.contains(names[i]));
    }
    if (parser.isSet(patch)) w.paramsPanel()->setPatch(parser.value(patch).toInt());
    w.show();
    if (parser.isSet(latency))
        studio::startLatencyBench(&w, parser.value(latency).toInt(), parser.value(latencyJson));
    const QStringList files = parser.positionalArguments();
    const bool opened = (!files.isEmpty() && w.openFile(files.first())) || w.openSample();
    const bool playing = opened && parser.isSet(play) && w.isVideo();
    if (playing) {
        auto once = std::make_shared<QMetaObject::Connection>();
        *once = QObject::connect(w.runner(), &studio::MergeRunner::resultReady, &w, [&w, once] {
            QObject::disconnect(*once);
            w.setPlaying(true);
        });
    }
    if (parser.isSet(shot)) {
        const QString path = parser.value(shot);
        auto grab = [&w, path, playing] {
            // a playing video is grabbed once playback has stopped at its last frame
            if (playing && (w.timeline()->playing() || w.timeline()->frame() == 0)) return;
            QTimer::singleShot(300, &w, [&w, path] {
                w.grab().save(path);
                QApplication::quit();
            });
        };
        QObject::connect(w.runner(), &studio::MergeRunner::resultReady, &w, grab);
        QObject::connect(w.runner(), &studio::MergeRunner::failed, &w, grab);
        if (!opened) grab();
    }
    return app.exec();
}
