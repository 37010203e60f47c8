// Video input on the bundled clip: frame ranges, decoding and seeking, tubelet token layout,
// units and padding, merge stability, export (arrays, overlay video, report), cancel, bad
// files, and resident memory over a long playback.
#include "qmpp/bench.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/videoexport.h"
#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <sstream>

using namespace qmpp;
using namespace qmpp::test;

namespace {

std::string clip() {
    return std::string(QMPP_SAMPLES) + "/realshort.mp4";
}

QStringList listing(const QString& dir) {
    return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
}

ImageInput solidFrame(int w, int h, int patch, std::uint8_t seed) {
    ImageInput img;
    img.width = w;
    img.height = h;
    img.patch = patch;
    img.rgb.resize(std::size_t(w) * h * 3);
    for (std::size_t i = 0; i < img.rgb.size(); ++i)
        img.rgb[i] = std::uint8_t(seed + 7 * i);
    return img;
}

} // namespace

class TestVideo : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;

  private slots:
    void frameRanges_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<qint64>("begin");
        QTest::addColumn<qint64>("end");
        QTest::newRow("A:B") << "3:9" << qint64(3) << qint64(9);
        QTest::newRow("A:") << "5:" << qint64(5) << qint64(-1);
        QTest::newRow(":B") << ":4" << qint64(0) << qint64(4);
        QTest::newRow(":") << ":" << qint64(0) << qint64(-1);
    }
    void frameRanges() {
        QFETCH(QString, text);
        QFETCH(qint64, begin);
        QFETCH(qint64, end);
        const FrameRange r = parseFrameRange(text.toStdString());
        QCOMPARE(r.begin, begin);
        QCOMPARE(r.end, end);
    }
    void badFrameRanges_data() {
        QTest::addColumn<QString>("text");
        for (const char* s : {"", "3", "5:5", "9:3", "a:b", "-1:4", "1:2:3", "1.5:3"})
            QTest::newRow(s) << s;
    }
    void badFrameRanges() {
        QFETCH(QString, text);
        QVERIFY_THROWS_EXCEPTION(UsageError, parseFrameRange(text.toStdString()));
    }

    void tubeletLayout() {
        // two frames 32x16, P = 8, T = 2: one slot of 2 x 4 tubelets, each (3, T, P, P)
        const ImageInput a = solidFrame(32, 16, 8, 1), b = solidFrame(32, 16, 8, 90);
        const TokenSet t = tokenizeFrames({&a, &b}, 2, nullptr);
        QCOMPARE(t.n, i64(8));
        QCOMPARE(t.d, i64(3 * 2 * 8 * 8));
        QCOMPARE(t.gridFrames, 1);
        QCOMPARE(t.gridRows, 2);
        QCOMPARE(t.gridCols, 4);
        auto norm = [](std::uint8_t v, int ch) {
            return (v / 255.0f - kImageNetMean[ch]) / kImageNetStd[ch];
        };
        // token (row 1, col 2), channel 2, frame tau = 1, pixel (y 3, x 5)
        const int r = 1, c = 2, ch = 2, tau = 1, y = 3, x = 5;
        const float got = t.x[(r * 4 + c) * t.d + ((ch * 2 + tau) * 8 + y) * 8 + x];
        const std::uint8_t px = b.rgb[((std::size_t(r) * 8 + y) * 32 + c * 8 + x) * 3 + ch];
        QCOMPARE(got, norm(px, ch));
        // T = 1 over two frames: two slots, tokens ordered (slot, row, col)
        const TokenSet s = tokenizeFrames({&a, &b}, 1, nullptr);
        QCOMPARE(s.gridFrames, 2);
        QCOMPARE(s.n, i64(16));
        QCOMPARE(s.x[8 * s.d], norm(b.rgb[0], 0));
        // frames of different sizes are refused
        const ImageInput small = solidFrame(16, 16, 8, 3);
        QVERIFY_THROWS_EXCEPTION(InputError, tokenizeFrames({&a, &small}, 1, nullptr));
        QVERIFY_THROWS_EXCEPTION(UsageError, tokenizeFrames({&a}, 2, nullptr));
    }

    void flicker() {
        const std::vector<i64> a = {0, 0, 1, 1, 2, 2, 2, 3};
        QCOMPARE(groupFlicker(a, a), 0.0);
        // the same partition under other ids does not flicker
        QCOMPARE(groupFlicker(a, {5, 5, 4, 4, 0, 0, 0, 1}), 0.0);
        // one token moves from group 2 to group 3
        QCOMPARE(groupFlicker(a, {0, 0, 1, 1, 2, 2, 3, 3}), 1.0 / 8.0);
        // everything in one group: only the largest matched group stays
        QCOMPARE(groupFlicker(a, std::vector<i64>(8, 0)), 1.0 - 3.0 / 8.0);
        // dropped tokens (-1) are a group of their own
        QCOMPARE(groupFlicker({-1, -1, 0, 0}, {-1, 0, 0, 0}), 0.25);
        QVERIFY_THROWS_EXCEPTION(UsageError, groupFlicker({0}, {0, 1}));
    }

    void readerSeeksExactly() {
        if (!haveVideoSupport()) QSKIP("built without OpenCV");
        VideoOptions o;
        VideoReader r(clip(), o);
        QCOMPARE(r.info().frames, i64(36));
        QCOMPARE(r.info().width, 320);
        QCOMPARE(r.info().height, 240);
        QVERIFY(std::abs(r.info().fps - 30.0) < 0.1);
        std::vector<ImageInput> seq(22);
        for (auto& f : seq)
            QVERIFY(r.read(f));
        QCOMPARE(r.position(), i64(22));
        QVERIFY(seq[20].rgb != seq[5].rgb); // the clip moves
        // backwards and forwards seeks land on the frame a sequential read gives
        for (i64 target : {20, 5, 21, 0}) {
            r.seek(target);
            ImageInput f;
            QVERIFY(r.read(f));
            QVERIFY2(f.rgb == seq[std::size_t(target)].rgb, qPrintable(QString::number(target)));
        }
        r.seek(35);
        ImageInput last;
        QVERIFY(r.read(last));
        QVERIFY(!r.read(last)); // past the end
        QVERIFY_THROWS_EXCEPTION(InputError, r.seek(36));
        // --width: 224 wide, height by aspect, snapped to P
        o.width = 224;
        VideoReader small(clip(), o);
        ImageInput f;
        QVERIFY(small.read(f));
        QCOMPARE(f.width, 224);
        QCOMPARE(f.height, 176); // 168 snapped to the nearest multiple of 16
    }

    void unitsAndPadding() {
        if (!haveVideoSupport()) QSKIP("built without OpenCV");
        VideoOptions o;
        o.tubelet = 2;
        o.window = 4;
        VideoReader r(clip(), o);
        std::vector<std::pair<i64, i64>> seen;
        std::vector<VideoUnit> units;
        forEachUnit(r, o, {30, -1}, [&](VideoUnit& u) {
            seen.emplace_back(u.begin, u.frames);
            units.push_back(u);
            return true;
        });
        for (const VideoUnit& u : units) {
            QCOMPARE(u.tokens.gridFrames, 2);
            QCOMPARE(u.tokens.n, i64(2 * 15 * 20));
            QCOMPARE(static_cast<int>(u.images.size()), 4);
        }
        QCOMPARE(units.back().padded, i64(2));
        QVERIFY(units.back().images[3].rgb ==
                units.back().images[1].rgb); // padding repeats the last frame
        QCOMPARE(seen, (std::vector<std::pair<i64, i64>>{{30, 4}, {34, 2}}));
    }

    void exportVideoRange() {
        if (!haveVideoSupport()) QSKIP("built without OpenCV");
        const QString dir = m_dir.filePath("export");
        MergeParams p;
        p.budget = 0.1;
        p.backend = BackendKind::Cpu;
        std::vector<std::pair<i64, i64>> progress;
        const VideoRun run = exportVideo(clip(), VideoOptions{}, {10, 16}, p, dir.toStdString(),
                                         false, [&](i64 done, i64 total) {
                                             progress.emplace_back(done, total);
                                             return true;
                                         });
        QCOMPARE(static_cast<int>(run.results.size()), 6);
        QCOMPARE(progress.back(), (std::pair<i64, i64>{6, 6}));
        QCOMPARE(static_cast<int>(run.flicker.size()), 5);
        for (std::size_t u = 1; u < run.results.size(); ++u)
            QCOMPARE(run.flicker[u - 1],
                     groupFlicker(run.results[u - 1].labels, run.results[u].labels));
        // arrays with the frame axis first, equal to the results
        const NdArray labels = readNpy((dir + "/labels.npy").toStdString());
        QCOMPARE(labels.shape, (std::vector<i64>{6, 300}));
        QCOMPARE(labels.as<std::int64_t>()[3 * 300 + 17], run.results[3].labels[17]);
        const TensorFile st = readSafetensors((dir + "/result.safetensors").toStdString());
        QVERIFY(st.find("merged") && st.find("merged")->shape == (std::vector<i64>{6, 30, 768}));
        // the overlay video decodes: one frame per input frame, groups beside saliency
        VideoReader ov((dir + "/overlay.avi").toStdString(), VideoOptions{});
        QCOMPARE(ov.info().frames, i64(6));
        QCOMPARE(ov.info().width, 640);
        QCOMPARE(ov.info().height, 240);
        // report.json agrees with the run
        QFile f(dir + "/report.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject rep = QJsonDocument::fromJson(f.readAll()).object();
        const QJsonArray units = rep["units"].toArray();
        QCOMPARE(units.size(), 6);
        QCOMPARE(units[2].toObject()["flicker_from_previous"].toDouble(), run.flicker[1]);
        QCOMPARE(units[5].toObject()["metrics"].toObject()["reconstruction_error"].toDouble(),
                 run.results[5].metrics.reconstructionError);

        // refused without force, and a cancelled export leaves the folder as it was
        QVERIFY_THROWS_EXCEPTION(
            InputError, exportVideo(clip(), VideoOptions{}, {0, 2}, p, dir.toStdString(), false));
        const QStringList before = listing(dir), parentBefore = listing(m_dir.path());
        QVERIFY_THROWS_EXCEPTION(Cancelled,
                                 exportVideo(clip(), VideoOptions{}, {0, 8}, p, dir.toStdString(),
                                             true, [](i64 done, i64) { return done < 3; }));
        QCOMPARE(listing(dir), before);
        QCOMPARE(listing(m_dir.path()), parentBefore);
        QCOMPARE(readNpy((dir + "/labels.npy").toStdString()).shape, (std::vector<i64>{6, 300}));
    }

    void badVideos_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("message");
        QFile f(QString::fromStdString(clip()));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray whole = f.readAll();
        QTest::newRow("empty") << QByteArray() << "the file is empty";
        QTest::newRow("text") << QByteArray("hello, not a video") << "not a readable video";
        QTest::newRow("truncated") << whole.left(30000) << "not a readable video";
        QTest::newRow("garbage") << QByteArray(4096, '\x5a') << "not a readable video";
    }
    void badVideos() {
        if (!haveVideoSupport()) QSKIP("built without OpenCV");
        QFETCH(QByteArray, bytes);
        QFETCH(QString, message);
        const QString path = m_dir.filePath("bad.mp4");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(bytes);
        f.close();
        try {
            VideoReader r(path.toStdString(), VideoOptions{});
            QFAIL("accepted a bad video");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).contains(message) && QString(e.what()).contains("bad.mp4"),
                     e.what());
        }
        try {
            VideoReader r(std::string(QMPP_FIXTURES) + "/video_zero_frames.avi", VideoOptions{});
            QFAIL("accepted a video with zero frames");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).contains("no decodable frames"), e.what());
        }
    }

    void longPlaybackMemoryIsFlat() {
        if (!haveVideoSupport()) QSKIP("built without OpenCV");
        // 1,000 frames (the clip looped 28 times) through decode, tokenize and merge; the note in
        // the README quotes the 10,000-frame run of `qmpp bench --video`.
        VideoOptions o;
        o.width = 112;
        MergeParams p;
        p.backend = BackendKind::Cpu;
        std::ostringstream log;
        nlohmann::ordered_json meta;
        const auto rows = benchVideo(clip(), o, 1000, p, log, meta);
        QCOMPARE(rows.size(), std::size_t(2));
        QVERIFY(rows[0].verified && rows[0].median > 0);
        QCOMPARE(meta["played_frames"].get<i64>(), i64(1000));
        const auto& rss = meta["rss_mib"];
        QVERIFY(rss.size() >= 10);
#if defined(__SANITIZE_ADDRESS__)
        QSKIP("AddressSanitizer keeps freed memory in quarantine, so resident memory grows by "
              "design");
#endif
        // after warm-up (frame 100), resident memory stays within 8 MiB
        const double warm = rss[1][1].get<double>(), last = rss.back()[1].get<double>();
        QVERIFY2(last - warm < 8.0, qPrintable(QString("%1 -> %2 MiB").arg(warm).arg(last)));
    }
};

QTEST_GUILESS_MAIN(TestVideo)
#include "tst_video.moc"
