// qmpp-studio [FILE] [--screenshot PNG]: opens FILE (or the bundled sample photo) and merges it
// live. --screenshot grabs the window after the first result and exits (docs, checks).
#include "mainwindow.h"

#include "qmpp/engine.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    Q_INIT_RESOURCE(studio); // the bundled sample lives in the studio library's resources
    QApplication::setOrganizationName("QuickMerge");
    QApplication::setApplicationName("QuickMerge++ Studio");
    QApplication::setApplicationVersion(qmpp::kVersion);
    QCommandLineParser parser;
    parser.setApplicationDescription("QuickMerge++ Studio: see and measure token merging");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("file", "image (png, jpg, ...) or embeddings (.npy, .safetensors) to open");
    QCommandLineOption shot("screenshot", "save a screenshot of the window after the first result, then quit", "png");
    parser.addOption(shot);
    parser.process(app);

    studio::MainWindow w;
    w.show();
    const QStringList files = parser.positionalArguments();
    const bool opened = (!files.isEmpty() && w.openFile(files.first())) || w.openSample();
    if (parser.isSet(shot)) {
        const QString path = parser.value(shot);
        auto grab = [&w, path] {
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
