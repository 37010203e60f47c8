// Hostile inputs, class by class: every variant of a class must end in its exit code with a
// message naming the file, quickly, with nothing written. (The classes of issue "Hardening,
// round 2"; each test loops over the variants of one class.)
#include "qmpp/array.h"
#include "qmpp/io.h"
#include "testutil.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>

#include <cmath>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// qmpp run to completion with its peak resident memory (wait4's ru_maxrss, KiB) and stderr.
struct Measured {
    int code = -1;
    long maxRssKiB = 0;
    QString err;
};
// `limitMiB` > 0: the child's address space is capped (RLIMIT_AS) so that a large allocation fails.
Measured runMeasured(const QStringList& args, long limitMiB = 0) {
    int pipeFd[2];
    if (pipe(pipeFd) != 0) return {};
    std::vector<QByteArray> store{QByteArray(QMPP_CLI)};
    for (const auto& a : args)
        store.push_back(a.toLocal8Bit());
    std::vector<char*> argv;
    for (auto& b : store)
        argv.push_back(b.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        if (limitMiB > 0) {
            const rlimit lim{rlim_t(limitMiB) << 20, rlim_t(limitMiB) << 20};
            setrlimit(RLIMIT_AS, &lim);
            // OpenCV loads the system's BLAS; OpenBLAS's pthread build starts its thread pool
            // as it loads and hangs when an address-space cap refuses a thread's stack
            setenv("OPENBLAS_NUM_THREADS", "1", 1);
        }
        dup2(pipeFd[1], 2);
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        close(pipeFd[0]);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(pipeFd[1]);
    QByteArray err;
    char buf[4096];
    for (ssize_t got; (got = read(pipeFd[0], buf, sizeof buf)) > 0;)
        err.append(buf, int(got));
    close(pipeFd[0]);
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    Measured m;
    m.code = WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    m.maxRssKiB = ru.ru_maxrss;
    m.err = QString::fromLocal8Bit(err);
    return m;
}

// The npy bytes of a header dict (padded as numpy pads it) and `data` after it.
QByteArray npyBytes(const QByteArray& dict, const QByteArray& data = {}) {
    QByteArray h = dict;
    while ((10 + h.size() + 1) % 64)
        h += ' ';
    h += '\n';
    QByteArray out("\x93NUMPY\x01\x00", 8);
    out += char(h.size() & 0xff);
    out += char(h.size() >> 8);
    return out + h + data;
}

} // namespace

using namespace qmpp;
using namespace qmpp::test;

class TestHardening : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;

    QString path(const QString& name) const { return m_dir.filePath(name); }
    void raw(const QString& name, const QByteArray& bytes) const {
        QFile f(path(name));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(bytes);
    }
    static QStringList listing(const QString& dir) {
        return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot,
                                   QDir::Name);
    }

  private slots:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        writeNpy(path("good.npy").toStdString(),
                 NdArray::fromFloat(randomTokens(64, 16, 1), {64, 16}));
    }

    // Class 3: anything that is not a regular file, in every role a path can take.
    void specialFiles_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("role");
        for (const char* kind : {"fifo", "socket", "device", "directory", "dangling link"})
            for (const char* role :
                 {"input .npy", "input .safetensors", "input image", "input video", "labels",
                  "hidden states", "attention", "uniforms", "ar weights", "projection",
                  "report.json", "tokenize input"})
                QTest::addRow("%s as %s", kind, role) << QString(kind) << QString(role);
    }
    void specialFiles() {
        QFETCH(QString, kind);
        QFETCH(QString, role);
        static const QMap<QString, QString> ext = {{"input .npy", ".npy"},
                                                   {"input .safetensors", ".safetensors"},
                                                   {"input image", ".png"},
                                                   {"input video", ".mp4"},
                                                   {"labels", ".txt"},
                                                   {"hidden states", ".npy"},
                                                   {"attention", ".npy"},
                                                   {"uniforms", ".npy"},
                                                   {"ar weights", ".safetensors"},
                                                   {"projection", ".npy"},
                                                   {"report.json", ""},
                                                   {"tokenize input", ".png"}};
        const QString dir = path("special-" + QString::number(qHash(kind + role)));
        QDir().mkpath(dir);
        // the special file, named as the role expects
        QString special = dir + "/special" + ext[role];
        if (role == "report.json") {
            QDir().mkpath(dir + "/folder");
            special = dir + "/folder/report.json";
        }
        const QByteArray sp = QFile::encodeName(special);
        if (kind == "fifo") {
            QCOMPARE(mkfifo(sp.constData(), 0600), 0);
        } else if (kind == "socket") {
            const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            QVERIFY(std::size_t(sp.size()) < sizeof a.sun_path);
            std::memcpy(a.sun_path, sp.constData(), std::size_t(sp.size()));
            QCOMPARE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            close(fd);
        } else if (kind == "device") {
            QVERIFY(QFile::link("/dev/zero", special)); // a link to a character device
        } else if (kind == "directory") {
            QVERIFY(QDir().mkpath(special));
        } else {
            QVERIFY(QFile::link(dir + "/nothing-here", special));
        }
        const QString good = path("good.npy"), out = dir + "/out";
        QStringList args;
        if (role.startsWith("input"))
            args = {"run", special, "--out", out};
        else if (role == "labels")
            args = {"run", good, "--labels", special, "--out", out};
        else if (role == "hidden states")
            args = {"run", good, "--hidden-states", special, "--out", out};
        else if (role == "attention")
            args = {"run", good, "--attention", special, "--out", out};
        else if (role == "uniforms")
            args = {"run", good, "--uniform", special, "--out", out};
        else if (role == "ar weights")
            args = {"run", good, "--ar-weights", special, "--out", out};
        else if (role == "projection")
            args = {"run", QString(QMPP_SAMPLES) + "/chelsea.png", "--projection", special, "--out",
                    out};
        else if (role == "report.json")
            args = {"report", dir + "/folder", "--out", out + ".html"};
        else
            args = {"tokenize", special, "--out", out + ".npy"};
        const QStringList before = listing(dir);
        QElapsedTimer clock;
        clock.start();
        const CliResult r = runQmpp(args, 20000);
        QVERIFY2(r.code != -1, "qmpp did not finish within 20 s (blocked on a special file?)");
        QCOMPARE(r.code, 3);
        QVERIFY2(r.err.contains(QFileInfo(special).fileName()), qPrintable(r.err));
        if (kind != "dangling link")
            QVERIFY2(r.err.contains("not a regular file") || r.err.contains("is a directory"),
                     qPrintable(r.err));
        QVERIFY(clock.elapsed() < 20000);
        QCOMPARE(listing(dir), before); // nothing written beside it
    }

    // Class 2 (lines): a labels file is bounded before it is read, and must be UTF-8.
    void labelsFiles_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("message");
        QTest::newRow("over 64 MiB") << QByteArray((64 << 20) + 1, 'a') << "over the limit";
        QTest::newRow("one line over 64 KiB")
            << (QByteArray("a\n") + QByteArray(70000, 'b') + "\n") << "line 2";
        QByteArray bad;
        for (int i = 0; i < 64; ++i)
            bad += i == 10 ? QByteArray("caf\xc3\x28\n") : QByteArray("tok\n");
        QTest::newRow("invalid UTF-8") << bad << "line 11: not valid UTF-8";
        QByteArray lone;
        for (int i = 0; i < 64; ++i)
            lone += i == 3 ? QByteArray("\xed\xa0\x80\n") : QByteArray("tok\n"); // a surrogate
        QTest::newRow("UTF-16 surrogate") << lone << "line 4: not valid UTF-8";
        QByteArray overlong;
        for (int i = 0; i < 64; ++i)
            overlong += i == 0 ? QByteArray("\xc0\xaf\n") : QByteArray("tok\n");
        QTest::newRow("overlong encoding") << overlong << "line 1: not valid UTF-8";
        QByteArray few;
        for (int i = 0; i < 63; ++i)
            few += "tok\n";
        QTest::newRow("too few lines") << few << "63 labels for N = 64";
    }
    void labelsFiles() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, message);
        raw("labels.txt", bytes);
        const CliResult r = runQmpp(
            {"run", path("good.npy"), "--labels", path("labels.txt"), "--out", path("l-out")},
            60000);
        QCOMPARE(r.code, 3);
        QVERIFY2(r.err.contains("labels.txt") && r.err.contains(message), qPrintable(r.err));
        QVERIFY(!QFileInfo::exists(path("l-out")));
    }
    // Class 8: parameters and headers that used to be taken silently.
    void refusedParameters_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("message");
        QTest::newRow("--tokens 0") << QStringList{"--tokens", "0"} << 2 << "at least 1, got 0";
        QTest::newRow("--tokens -3") << QStringList{"--tokens", "-3"} << 2 << "at least 1";
        QTest::newRow("--seed -1") << QStringList{"--seed", "-1"} << 2 << "whole number";
        QTest::newRow("--seed 2^64")
            << QStringList{"--seed", "18446744073709551616"} << 2 << "at most";
        QTest::newRow("--seed 1e3") << QStringList{"--seed", "1e3"} << 2 << "whole number";
        QTest::newRow("--seed +4") << QStringList{"--seed", "+4"} << 2 << "whole number";
        QTest::newRow("--batch -5") << QStringList{"--batch", "-5"} << 2 << "at least 0";
        QTest::newRow("--batch -1") << QStringList{"--batch", "-1"} << 2 << "at least 0";
        QTest::newRow("agglomerative over its N")
            << QStringList{"--cluster", "agglomerative"} << 2 << "exceeds its limit";
        QTest::newRow("reference over its N")
            << QStringList{"--cluster", "reference"} << 2 << "exceeds its limit";
    }
    void refusedParameters() {
        QFETCH(QStringList, extra);
        QFETCH(int, code);
        QFETCH(QString, message);
        // 16,385 one-feature tokens: one over the exact methods' limit
        const QString input = extra.contains("--cluster") ? path("n16385.npy") : path("good.npy");
        if (!QFileInfo::exists(path("n16385.npy")))
            writeNpy(path("n16385.npy").toStdString(),
                     NdArray::fromFloat(randomTokens(16385, 1, 3), {16385, 1}));
        QElapsedTimer clock;
        clock.start();
        const CliResult r = runQmpp(QStringList{"run", input, "--out", path("p-out")} + extra);
        QCOMPARE(r.code, code);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
        QVERIFY2(clock.elapsed() < 10000, "refused only after work was done");
        QVERIFY(!QFileInfo::exists(path("p-out")));
    }
    void acceptedSeeds() {
        for (const char* seed : {"0", "18446744073709551615", "00012"}) {
            const CliResult r = runQmpp({"run", path("good.npy"), "--out", path("s-out"), "--seed",
                                         seed, "--force", "--quiet"});
            QVERIFY2(r.code == 0, qPrintable(r.err));
        }
    }

    // Class 2: a file under 1 MB must not make qmpp hold more than 256 MB before refusing.
    void smallFilesStaySmall_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("ext");
        QTest::addColumn<QString>("message");
        QTest::newRow("npy (1e17, 0, 5)") << npyBytes("{'descr': '<f4', 'fortran_order': False, "
                                                      "'shape': (100000000000000000, 0, 5), }")
                                          << ".npy"
                                          << "zero side";
        QTest::newRow("npy (0, 5)")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }") << ".npy"
            << "zero side";
        QTest::newRow("npy (7, 0)")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (7, 0), }") << ".npy"
            << "zero side";
        QTest::newRow("npy (3, 0, 4)")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 4), }") << ".npy"
            << "zero side";
        QTest::newRow("npy D = 40000 (AR heads)")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 40000), }",
                        QByteArray(2 * 40000 * 4, '\0'))
            << ".npy"
            << "exceed the limit of 32768";
        QTest::newRow("npy trailing garbage")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } GARBAGE)(",
                        QByteArray(16, '\0'))
            << ".npy"
            << "unexpected text after the dict";
        QTest::newRow("npy second dict")
            << npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }{}",
                        QByteArray(16, '\0'))
            << ".npy"
            << "unexpected text after the dict";
    }
    void smallFilesStaySmall() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, ext);
        QFETCH(QString, message);
        QVERIFY(bytes.size() < (1 << 20));
        raw("small" + ext, bytes);
        const Measured m = runMeasured({"run", path("small" + ext), "--out", path("m-out")});
        QCOMPARE(m.code, 3);
        QVERIFY2(m.err.contains("small" + ext) || message.contains("limit"), qPrintable(m.err));
        QVERIFY2(m.err.contains(message), qPrintable(m.err));
        QVERIFY2(m.maxRssKiB < 256 * 1024,
                 qPrintable(QString("peak resident memory %1 MiB").arg(m.maxRssKiB / 1024)));
        QVERIFY(!QFileInfo::exists(path("m-out")));
    }

    // Class 4: running out of memory on any thread ends in exit 4 with the message, never in
    // std::terminate (an exception leaving an OpenMP region aborts the process).
    void outOfMemoryIsExit4_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::newRow("multi-scale, L = 1") << QStringList{};
        QTest::newRow("multi-scale, L = 4") << QStringList{"--layers", "4"};
        QTest::newRow("tome") << QStringList{"--method", "tome"};
        QTest::newRow("top-K") << QStringList{"--method", "topk"};
        QTest::newRow("K = 16") << QStringList{"--tokens", "16"};
    }
    void outOfMemoryIsExit4() {
#if defined(__SANITIZE_ADDRESS__)
        QSKIP("an address-space limit cannot be combined with AddressSanitizer's shadow memory");
#endif
        QFETCH(QStringList, extra);
        // 2,000,000 one-feature tokens (8 MB): the entropy's row-block scratch alone is
        // 48 x N floats per thread
        if (!QFileInfo::exists(path("big.npy")))
            writeNpy(path("big.npy").toStdString(),
                     NdArray::fromFloat(randomTokens(2000000, 1, 5), {2000000, 1}));
        // the cap: what `qmpp --version` needs, plus 400 MB
        long base = 256;
        while (base < 4096 && runMeasured({"--version"}, base).code != 0)
            base += 64;
        const Measured m = runMeasured(
            QStringList{"run", path("big.npy"), "--out", path("oom-out"), "--backend", "cpu"} +
                extra,
            base + 400);
        QVERIFY2(m.code == 4, qPrintable(QString("exit %1: %2").arg(m.code).arg(m.err)));
        QVERIFY2(m.err.contains("out of memory"), qPrintable(m.err));
        QVERIFY(!m.err.contains("terminate"));
        QVERIFY(!QFileInfo::exists(path("oom-out")));
    }

    // Class 5: no parameter or value makes a run end at exit 0 with NaN in its outputs: each is
    // either computed in a range that stays finite or refused with its allowed range.
    void nonFiniteRefused_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QString>("tokens"); // "" = good.npy
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("message");
        for (const char* t : {"1e-320", "1e-7", "0", "-1", "nan", "inf"})
            QTest::addRow("temperature %s", t)
                << QStringList{"--temperature", t} << "" << 2 << "temperature must be at least";
        for (const char* e : {"1e308", "1.5", "-0.1", "nan", "inf"})
            QTest::addRow("epsilon %s", e) << QStringList{"--epsilon", e} << "" << 2 << "[0, 1]";
        QTest::newRow("float32 tokens of 3e38")
            << QStringList{} << "f32:3e38" << 3 << "outside +-1e+15";
        QTest::newRow("float32 tokens of -1e16")
            << QStringList{} << "f32:-1e16" << 3 << "outside +-1e+15";
        QTest::newRow("float64 tokens of 1e300")
            << QStringList{} << "f64:1e300" << 3 << "outside float32's range";
        QTest::newRow("float64 tokens of -inf") << QStringList{} << "f64:-inf" << 3 << "non-finite";
        QTest::newRow("float64 NaN") << QStringList{} << "f64:nan" << 3 << "non-finite";
        QTest::newRow("float16 inf") << QStringList{} << "f16:inf" << 3 << "non-finite";
    }
    void nonFiniteRefused() {
        QFETCH(QStringList, extra);
        QFETCH(QString, tokens);
        QFETCH(int, code);
        QFETCH(QString, message);
        QString input = path("good.npy");
        if (!tokens.isEmpty()) {
            const QStringList kv = tokens.split(':');
            const double value = kv[1].toDouble();
            std::vector<float> x = randomTokens(64, 16, 9);
            NdArray a;
            if (kv[0] == "f64") {
                std::vector<double> d(x.begin(), x.end());
                d[5 * 16 + 7] = value;
                a.dtype = DType::F64;
                a.shape = {64, 16};
                a.bytes.resize(d.size() * 8);
                std::memcpy(a.bytes.data(), d.data(), a.bytes.size());
            } else {
                x[5 * 16 + 7] = float(value);
                a = NdArray::fromFloatAs(x, {64, 16}, kv[0] == "f16" ? DType::F16 : DType::F32);
            }
            input = path("values.npy");
            writeNpy(input.toStdString(), a);
        }
        const CliResult r =
            runQmpp(QStringList{"run", input, "--out", path("nf-out"), "--backend", "cpu"} + extra);
        QCOMPARE(r.code, code);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
        if (code == 3)
            QVERIFY2(r.err.contains("values.npy") && r.err.contains("row 5, column 7"),
                     qPrintable(r.err));
        QVERIFY(!QFileInfo::exists(path("nf-out")));
    }
    // The edges of the allowed ranges run, and every output is finite.
    void edgesStayFinite_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<double>("value"); // one token entry set to this (0: none)
        QTest::newRow("temperature 1e-6") << QStringList{"--temperature", "1e-6"} << 0.0;
        QTest::newRow("temperature 1e6") << QStringList{"--temperature", "1e6"} << 0.0;
        QTest::newRow("epsilon 1") << QStringList{"--epsilon", "1"} << 0.0;
        QTest::newRow("epsilon 0") << QStringList{"--epsilon", "0"} << 0.0;
        QTest::newRow("tokens of 1e15") << QStringList{} << 1e15;
        QTest::newRow("tokens of -1e15, L = 12") << QStringList{"--layers", "12"} << -1e15;
        QTest::newRow("tokens of 1e15, tome") << QStringList{"--method", "tome"} << 1e15;
    }
    void edgesStayFinite() {
        QFETCH(QStringList, extra);
        QFETCH(double, value);
        std::vector<float> x = randomTokens(64, 16, 11);
        if (value != 0)
            for (int i = 0; i < 16; ++i)
                x[3 * 16 + i] = float(value) * (i % 2 ? 1.0f : -0.5f);
        writeNpy(path("edge.npy").toStdString(), NdArray::fromFloat(x, {64, 16}));
        QDir(path("edge-out")).removeRecursively();
        const CliResult r = runQmpp(
            QStringList{"run", path("edge.npy"), "--out", path("edge-out"), "--backend", "cpu"} +
            extra);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        for (const char* f : {"merged.npy", "saliency.npy", "mask.npy", "mass.npy"}) {
            const auto v = readNpy(path("edge-out/").toStdString() + f).toFloat();
            for (float e : v)
                QVERIFY2(std::isfinite(e), f);
        }
        QFile rep(path("edge-out/report.json"));
        QVERIFY(rep.open(QIODevice::ReadOnly));
        QVERIFY2(!rep.readAll().contains("null"), "a loss or metric is null (NaN) in report.json");
    }

    // Class 1: `qmpp report` checks the folder it reads: report.json's fields and the arrays'
    // shapes, before anything is indexed or sized from them.
    void reportFolders_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QByteArray>("json"); // a replacement report.json ("" = keep)
        QTest::addColumn<QString>("array");   // "name:shape" of a replacement array
        QTest::addColumn<QString>("message");
        QTest::newRow("metrics deleted") << "report.json" << QByteArray("del:metrics") << ""
                                         << "/metrics is missing";
        QTest::newRow("empty items") << "report.json" << QByteArray("set:items=[]") << ""
                                     << "/items must be a non-empty array";
        QTest::newRow("empty units") << "report.json" << QByteArray("set:units=[]") << ""
                                     << "/units must be a non-empty array";
        QTest::newRow("k a string") << "report.json" << QByteArray("setp:k=\"abc\"") << ""
                                    << "/parameters/k must be a whole number";
        QTest::newRow("k = 2e8") << "report.json" << QByteArray("setp:k=200000000") << ""
                                 << "/parameters/k = 200000000 does not lie in 1..N";
        QTest::newRow("k = 0") << "report.json" << QByteArray("setp:k=0") << ""
                               << "does not lie in 1..N";
        QTest::newRow("input a number") << "report.json" << QByteArray("set:input=5") << ""
                                        << "/input must be an object";
        QTest::newRow("outputs of numbers") << "report.json" << QByteArray("set:outputs=[1]") << ""
                                            << "/outputs/0 must be a string";
        QTest::newRow("tool a number") << "report.json" << QByteArray("set:tool=7") << ""
                                       << "/tool must be a string";
        QTest::newRow("median a string")
            << "report.json" << QByteArray("setm:group_size_median=\"x\"") << ""
            << "group_size_median must be a number";
        QTest::newRow("not an object") << "report.json" << QByteArray("raw:[]") << ""
                                       << "not a JSON object";
        QTest::newRow("truncated JSON") << "report.json" << QByteArray("raw:{\"input\": {") << ""
                                        << "not a JSON object";
        QTest::newRow("0-d labels") << "labels.npy" << QByteArray() << "labels.npy:"
                                    << "got []";
        QTest::newRow("empty saliency") << "saliency.npy" << QByteArray() << "saliency.npy:0"
                                        << "expected [N]";
        QTest::newRow("mask of length 1") << "mask.npy" << QByteArray() << "mask.npy:1"
                                          << "differs from labels.npy";
        QTest::newRow("mass of another shape") << "mass.npy" << QByteArray() << "mass.npy:2,32"
                                               << "differs from labels.npy";
        QTest::newRow("3-D labels") << "labels.npy" << QByteArray() << "labels.npy:2,4,8"
                                    << "expected [N]";
        QTest::newRow("1-D merged") << "merged.npy" << QByteArray() << "merged.npy:12"
                                    << "expected [K, D]";
    }
    void reportFolders() {
        QFETCH(QString, file);
        QFETCH(QByteArray, json);
        QFETCH(QString, array);
        QFETCH(QString, message);
        const QString dir = path("rep-" + QString::number(qHash(QString(QTest::currentDataTag()))));
        QDir(dir).removeRecursively();
        const CliResult made = runQmpp({"run", path("good.npy"), "--out", dir, "--quiet"});
        QVERIFY2(made.code == 0, qPrintable(made.err));
        if (!json.isEmpty()) {
            QFile f(dir + "/report.json");
            QVERIFY(f.open(QIODevice::ReadOnly));
            QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
            f.close();
            const QString op = QString(json).section(':', 0, 0),
                          rest = QString(json).section(':', 1);
            const QString key = rest.section('=', 0, 0);
            const QJsonValue value =
                QJsonDocument::fromJson("[" + rest.section('=', 1).toUtf8() + "]").array().at(0);
            QByteArray out;
            if (op == "raw") {
                out = rest.toUtf8();
            } else {
                if (op == "del") o.remove(key);
                if (op == "set") o.insert(key, value);
                if (op == "setp") {
                    QJsonObject p = o["parameters"].toObject();
                    p.insert(key, value);
                    o.insert("parameters", p);
                }
                if (op == "setm") {
                    QJsonObject m = o["metrics"].toObject();
                    m.insert(key, value);
                    o.insert("metrics", m);
                }
                out = QJsonDocument(o).toJson();
            }
            QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
            f.write(out);
        }
        if (!array.isEmpty()) {
            std::vector<std::int64_t> shape;
            for (const QString& d : array.section(':', 1).split(',', Qt::SkipEmptyParts))
                shape.push_back(d.toLongLong());
            std::int64_t count = 1;
            for (auto d : shape)
                count *= d;
            writeNpy((dir + "/" + array.section(':', 0, 0)).toStdString(),
                     NdArray::fromFloat(std::vector<float>(std::size_t(count), 0.5f), shape));
        }
        const Measured m = runMeasured({"report", dir, "--out", path("rep.html")});
        QVERIFY2(m.code == 3, qPrintable(QString("exit %1: %2").arg(m.code).arg(m.err)));
        QVERIFY2(m.err.contains(file) && m.err.contains(message), qPrintable(m.err));
        QVERIFY(!m.err.contains("json.exception"));
        QVERIFY(m.maxRssKiB < 256 * 1024);
        QVERIFY(!QFileInfo::exists(path("rep.html")));
    }

    // Classes 6 and 10: the output folder is replaced whole or not at all, and nothing of the
    // user's (an input inside it, an unrelated file, a file named like a temporary) is touched.
    void forceOntoAFolderThatCannotTakeIt() {
        const QString dir = path("force-dir");
        QDir(dir).removeRecursively();
        QVERIFY(runQmpp({"run", path("good.npy"), "--out", dir, "--quiet"}).code == 0);
        raw("force-dir/keep.txt", "mine");
        QFile::remove(dir + "/mass.npy");
        QVERIFY(QDir().mkpath(dir + "/mass.npy/x")); // a folder where a result goes
        auto snapshot = [&] {
            QStringList s;
            for (const QString& f : listing(dir)) {
                QFile file(dir + "/" + f);
                s << f + (file.open(QIODevice::ReadOnly) ? QString::number(qHash(file.readAll()))
                                                         : QString("(dir)"));
            }
            return s;
        };
        const QStringList before = snapshot();
        const CliResult r =
            runQmpp({"run", path("good.npy"), "--out", dir, "--force", "--seed", "9"});
        QCOMPARE(r.code, 3);
        QVERIFY2(r.err.contains("mass.npy") && r.err.contains("not a regular file"),
                 qPrintable(r.err));
        QCOMPARE(snapshot(), before); // nothing replaced: not a mixed folder
        QCOMPARE(listing(path("")).filter(".qmpp-").size(), 0);
    }
    void concurrentRunsIntoOneNewFolder() {
        writeNpy(path("mid.npy").toStdString(),
                 NdArray::fromFloat(randomTokens(3000, 32, 4), {3000, 32}));
        for (int attempt = 0; attempt < 4; ++attempt) {
            const QString dir = path("race-" + QString::number(attempt));
            QProcess one, two;
            one.start(QMPP_CLI, {"run", path("mid.npy"), "--out", dir, "--seed", "1", "--quiet"});
            two.start(QMPP_CLI, {"run", path("mid.npy"), "--out", dir, "--seed", "2", "--quiet"});
            QVERIFY(one.waitForFinished(120000) && two.waitForFinished(120000));
            const QList<int> codes = {one.exitCode(), two.exitCode()};
            QVERIFY2(codes.count(0) == 1 && codes.count(3) == 1,
                     qPrintable(QString("exit codes %1 and %2: %3")
                                    .arg(codes[0])
                                    .arg(codes[1])
                                    .arg(QString(one.readAllStandardError() +
                                                 two.readAllStandardError()))));
            QCOMPARE(listing(path("")).filter(".qmpp-").size(), 0);
        }
    }
    void signalsLeaveNothingBehind_data() {
        QTest::addColumn<int>("sig");
        QTest::newRow("SIGINT") << int(SIGINT);
        QTest::newRow("SIGTERM") << int(SIGTERM);
        QTest::newRow("SIGHUP") << int(SIGHUP);
    }
    void signalsLeaveNothingBehind() {
        QFETCH(int, sig);
        // a video export: its temporary folder (and overlay.avi in it) exists for the whole run;
        // frames scaled to 1280 wide take about a second each here
        const QString dir = path("sig-out");
        QProcess p;
        p.start(QMPP_CLI, {"run", QString(QMPP_SAMPLES) + "/realshort.mp4", "--out", dir, "--width",
                           "1280", "--backend", "cpu"});
        QVERIFY(p.waitForStarted());
        // wait until the temporary folder exists, then interrupt
        QElapsedTimer t;
        t.start();
        while (listing(path("")).filter(".sig-out.qmpp-").isEmpty() && t.elapsed() < 20000)
            QTest::qWait(20);
        QVERIFY(!listing(path("")).filter(".sig-out.qmpp-").isEmpty());
        ::kill(pid_t(p.processId()), sig);
        QVERIFY(p.waitForFinished(20000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 128 + sig);
        QVERIFY(!QFileInfo::exists(dir));
        QCOMPARE(listing(path("")).filter(".qmpp-").size(), 0);
    }
    void reportDoesNotOverwrite_data() {
        QTest::addColumn<QString>("target"); // relative to the run folder's parent
        QTest::addColumn<bool>("force");
        QTest::addColumn<int>("code");
        QTest::newRow("a result, no --force") << "rd/merged.npy" << false << 3;
        QTest::newRow("a result, --force") << "rd/merged.npy" << true << 3;
        QTest::newRow("labels.npy, --force") << "rd/labels.npy" << true << 3;
        QTest::newRow("a user's file, no --force") << "mine.html" << false << 3;
        QTest::newRow("a user's file, --force") << "mine.html" << true << 0;
        QTest::newRow("a new file") << "fresh.html" << false << 0;
    }
    void reportDoesNotOverwrite() {
        QFETCH(QString, target);
        QFETCH(bool, force);
        QFETCH(int, code);
        QDir(path("rd")).removeRecursively();
        QFile::remove(path("fresh.html"));
        QVERIFY(runQmpp({"run", path("good.npy"), "--out", path("rd"), "--quiet"}).code == 0);
        raw("mine.html", "user's page");
        QFile before(path(target));
        const QByteArray old = before.open(QIODevice::ReadOnly) ? before.readAll() : QByteArray();
        before.close();
        QStringList args = {"report", path("rd"), "--out", path(target)};
        if (force) args << "--force";
        const CliResult r = runQmpp(args);
        QCOMPARE(r.code, code);
        if (code == 3) {
            QVERIFY2(r.err.contains(QFileInfo(target).fileName()), qPrintable(r.err));
            QFile after(path(target));
            QVERIFY(after.open(QIODevice::ReadOnly));
            QCOMPARE(after.readAll(), old); // untouched
        }
    }
    void inputsInsideTheOutput_data() {
        QTest::addColumn<QStringList>("args"); // "@" stands for the folder
        QTest::newRow("input is merged.npy") << QStringList{"run", "@/merged.npy", "--force"};
        QTest::newRow("input is labels.npy") << QStringList{"run", "@/labels.npy", "--force"};
        QTest::newRow("uniforms are mask.npy")
            << QStringList{"run", "GOOD", "--uniform", "@/mask.npy", "--force"};
        QTest::newRow("hidden states are result.safetensors")
            << QStringList{"run", "GOOD", "--hidden-states", "@/result.safetensors", "--force"};
    }
    void inputsInsideTheOutput() {
        QFETCH(QStringList, args);
        const QString dir = path("self");
        QDir(dir).removeRecursively();
        QVERIFY(runQmpp({"run", path("good.npy"), "--out", dir, "--quiet"}).code == 0);
        QFile m(dir + "/merged.npy");
        QVERIFY(m.open(QIODevice::ReadOnly));
        const QByteArray before = m.readAll();
        m.close();
        for (auto& a : args)
            a = a.replace("@", dir).replace("GOOD", path("good.npy"));
        const CliResult r = runQmpp(args + QStringList{"--out", dir});
        QCOMPARE(r.code, 3);
        QVERIFY2(r.err.contains("lies in the output folder"), qPrintable(r.err));
        QVERIFY(m.open(QIODevice::ReadOnly));
        QCOMPARE(m.readAll(), before);
    }
    void forceRemovesStaleResultsOnly() {
        const QString dir = path("stale");
        QDir(dir).removeRecursively();
        QVERIFY(runQmpp({"run", QString(QMPP_SAMPLES) + "/chelsea.png", "--out", dir, "--quiet"})
                    .code == 0);
        QVERIFY(QFileInfo::exists(dir + "/clusters.png"));
        raw("stale/notes.txt", "mine");
        QVERIFY(runQmpp({"run", path("good.npy"), "--out", dir, "--force", "--quiet"}).code == 0);
        for (const char* gone : {"saliency.png", "clusters.png", "merged.png"})
            QVERIFY2(!QFileInfo::exists(dir + "/" + gone), gone);
        QVERIFY(QFileInfo::exists(dir + "/notes.txt"));
        QVERIFY(QFileInfo::exists(dir + "/merged.npy"));
    }
    void tokenizeKeepsUserFiles() {
        for (const char* name : {"t.npy.qmpp-partial", "t.npy.part-1", "t.npy.qmpp-abcdef"}) {
            raw(name, "user data");
            const CliResult r = runQmpp({"tokenize", QString(QMPP_SAMPLES) + "/chelsea.png",
                                         "--out", path("t.npy"), "--force"});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            QFile f(path(name));
            QVERIFY(f.open(QIODevice::ReadOnly));
            QCOMPARE(f.readAll(), QByteArray("user data"));
        }
        QCOMPARE(
            listing(path("")).filter(QRegularExpression("^t\\.npy\\.qmpp-[A-Za-z0-9]{6}$")).size(),
            1); // the user's, not a leftover
    }

    // Class 2 (images): the size in an image's header is checked before anything is decoded.
    void imageHeadersClaimingTooMuch_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("ext");
        QTest::addColumn<QString>("message");
        auto be32 = [](quint32 v) {
            return QByteArray(1, char(v >> 24)) + char(v >> 16) + char(v >> 8) + char(v);
        };
        auto le32 = [](quint32 v) {
            return QByteArray(1, char(v)) + char(v >> 8) + char(v >> 16) + char(v >> 24);
        };
        const QByteArray png = QByteArray("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16) + be32(40000) +
                               be32(26000) + QByteArray("\x08\x02\0\0\0", 5) + QByteArray(600, 'x');
        QTest::newRow("PNG 40000 x 26000") << png << ".png"
                                           << "40000 x 26000";
        QByteArray jpg("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 20);
        jpg += QByteArray(
            "\xff\xc0\x00\x11\x08\x75\x30\x75\x30\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01",
            19); // SOF0: 30000 x 30000
        jpg += QByteArray(600, '\0');
        QTest::newRow("JPEG 30000 x 30000") << jpg << ".jpg"
                                            << "30000 x 30000";
        QByteArray bmp = QByteArray("BM") + le32(700) + le32(0) + le32(54) + le32(40) +
                         le32(30000) + le32(quint32(-30000)) + QByteArray(600, '\0');
        QTest::newRow("BMP 30000 x 30000, top-down") << bmp << ".bmp"
                                                     << "30000 x 30000";
        QByteArray webp = QByteArray("RIFF") + le32(700) + "WEBPVP8X" + le32(10) + le32(0) +
                          QByteArray("\xfe\x3f\x00\xfe\x3f\x00", 6) + QByteArray(600, '\0');
        QTest::newRow("WebP 16383 x 16383") << webp << ".webp"
                                            << "16383 x 16383";
        QByteArray tif = QByteArray("II*\0", 4) + le32(8) + QByteArray("\x02\x00", 2);
        tif += QByteArray("\x00\x01\x04\x00\x01\x00\x00\x00", 8) + le32(30000); // width LONG
        tif += QByteArray("\x01\x01\x04\x00\x01\x00\x00\x00", 8) + le32(30000); // length
        tif += le32(0) + QByteArray(600, '\0');
        QTest::newRow("TIFF 30000 x 30000") << tif << ".tif"
                                            << "30000 x 30000";
        QTest::newRow("PNM bytes named .png")
            << QByteArray("P6\n30000 30000\n255\n") + QByteArray(600, 'x') << ".png"
            << "not a PNG, JPEG, BMP, TIFF or WebP";
        QTest::newRow("PNG cut in its header") << QByteArray("\x89PNG\r\n\x1a\n\0\0", 10) << ".png"
                                               << "not a PNG"; // under 24 bytes: not recognised
    }
    void imageHeadersClaimingTooMuch() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, ext);
        QFETCH(QString, message);
        QVERIFY(bytes.size() < 4096);
        raw("claim" + ext, bytes);
        for (const QString& cmd : {QString("run"), QString("tokenize")}) {
            const QString out = cmd == "run" ? path("img-out") : path("img.npy");
            const Measured m = runMeasured({cmd, path("claim" + ext), "--out", out});
            QVERIFY2(m.code == 3,
                     qPrintable(QString("%1: exit %2: %3").arg(cmd).arg(m.code).arg(m.err)));
            QVERIFY2(m.err.contains("claim" + ext) && m.err.contains(message), qPrintable(m.err));
            QVERIFY2(m.maxRssKiB < 256 * 1024,
                     qPrintable(QString("peak %1 MiB").arg(m.maxRssKiB / 1024)));
            QVERIFY(!QFileInfo::exists(out));
        }
    }

    // Class 9: a refused image or video prints our message alone, not its codec's complaints.
    void noCodecChatter_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("bytes"); // the sample's first bytes (0: garbage)
        QTest::newRow("PNG cut short") << "chelsea.png" << 300;
        QTest::newRow("JPEG garbage") << "x.jpg" << 0;
        QTest::newRow("MP4 cut before its index") << "realshort.mp4" << 20000;
        QTest::newRow("MP4 garbage") << "x.mp4" << 0;
    }
    void noCodecChatter() {
        QFETCH(QString, file);
        QFETCH(int, bytes);
        QByteArray data = QByteArray(2000, 'z');
        if (bytes > 0) {
            QFile f(QString(QMPP_SAMPLES) + "/" + file);
            QVERIFY(f.open(QIODevice::ReadOnly));
            data = f.read(bytes);
        }
        const QString name = "chatter" + file.mid(file.lastIndexOf('.'));
        raw(name, data);
        const CliResult r = runQmpp({"run", path(name), "--out", path("ch-out")});
        QCOMPARE(r.code, 3);
        for (const QString& line : r.err.split('\n', Qt::SkipEmptyParts))
            QVERIFY2(line.startsWith("qmpp: "), qPrintable("stray output: " + line));
    }

    // Class 7: video edges.
    void videoEdges() {
        // a one-frame video (the overlay of frame 0 of the sample) tokenizes to one unit
        const QString dir = path("one-frame");
        QDir(dir).removeRecursively();
        QVERIFY(runQmpp({"run", QString(QMPP_SAMPLES) + "/realshort.mp4", "--frames", "0:1",
                         "--width", "32", "--out", dir, "--quiet"})
                    .code == 0);
        const CliResult t =
            runQmpp({"tokenize", dir + "/overlay.avi", "--out", path("one.npy"), "--force"});
        QVERIFY2(t.code == 0, qPrintable(t.err));
        const NdArray a = readNpy(path("one.npy").toStdString());
        QCOMPARE(a.ndim(), 3);
        QCOMPARE(a.shape[0], std::int64_t(1));
        QVERIFY(a.shape[1] > 0 && a.shape[2] > 0);
        // the 40-megapixel limit applies after --width scales the frames (320 x 240 -> 50 MP)
        for (const QString& cmd : {QString("run"), QString("tokenize")}) {
            const QString out = cmd == "run" ? path("wide-out") : path("wide.npy");
            const Measured m = runMeasured(
                {cmd, QString(QMPP_SAMPLES) + "/realshort.mp4", "--width", "8192", "--out", out});
            QVERIFY2(m.code == 3, qPrintable(m.err));
            QVERIFY2(m.err.contains("scaled to --width 8192") && m.err.contains("40 megapixels"),
                     qPrintable(m.err));
            QVERIFY(m.maxRssKiB < 256 * 1024);
            QVERIFY(!QFileInfo::exists(out));
        }
    }

    void validLabelsStillWork() {
        QByteArray ok;
        for (int i = 0; i < 64; ++i)
            ok += i % 2 ? QByteArray("caf\xc3\xa9 \xe2\x82\xac\r\n") : QByteArray("tok\n");
        raw("ok.txt", ok);
        const CliResult r =
            runQmpp({"run", path("good.npy"), "--labels", path("ok.txt"), "--out", path("ok-out")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestHardening)
#include "tst_hardening.moc"
