// .npy and .safetensors: round trips of every dtype and a malformed-file matrix.
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "testutil.h"

#include <cstring>

using namespace qmpp;

namespace {

std::vector<std::uint8_t> bytesOf(const std::string& s) {
    return {s.begin(), s.end()};
}

// A v1 .npy file with a hand-written header and raw data.
std::vector<std::uint8_t> npyRaw(const std::string& header, const std::vector<std::uint8_t>& data,
                                 int major = 1) {
    std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', std::uint8_t(major), 0};
    const std::size_t hl = header.size();
    out.push_back(hl & 0xff);
    out.push_back((hl >> 8) & 0xff);
    if (major >= 2) {
        out.push_back((hl >> 16) & 0xff);
        out.push_back((hl >> 24) & 0xff);
    }
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::vector<std::uint8_t> safetensorsRaw(const std::string& header, std::size_t dataBytes) {
    std::vector<std::uint8_t> out(8);
    for (int i = 0; i < 8; ++i)
        out[i] = (header.size() >> (8 * i)) & 0xff;
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + dataBytes, 0x3f);
    return out;
}

} // namespace

class TestIo : public QObject {
    Q_OBJECT
  private slots:
    void halfConversion() {
        for (float f :
             {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f})
            QCOMPARE(halfToFloat(floatToHalf(f)), f);
        QCOMPARE(floatToHalf(1.0f), std::uint16_t(0x3c00));
        QCOMPARE(floatToHalf(70000.0f), std::uint16_t(0x7c00)); // overflow to +Inf
        QCOMPARE(bf16ToFloat(floatToBf16(1.5f)), 1.5f);
    }

    void npyRoundTrip_data() {
        QTest::addColumn<int>("dtype");
        QTest::newRow("f16") << int(DType::F16);
        QTest::newRow("f32") << int(DType::F32);
        QTest::newRow("f64") << int(DType::F64);
        QTest::newRow("i32") << int(DType::I32);
        QTest::newRow("i64") << int(DType::I64);
    }
    void npyRoundTrip() {
        QFETCH(int, dtype);
        const std::vector<float> v = {1, -2, 3.5f, 4, 0, 7, -8, 9.25f, 10, 11, 12, 13};
        NdArray a;
        switch (DType(dtype)) {
        case DType::I32:
            a = NdArray::fromInt32({1, -2, 3, 4, 0, 7, -8, 9, 10, 11, 12, 13}, {3, 4});
            break;
        case DType::I64:
            a = NdArray::fromInt64({1, -2, 3, 4, 0, 7, -8, 9, 10, 11, 12, 13}, {3, 4});
            break;
        default:
            a = NdArray::fromFloatAs(v, {3, 4}, DType(dtype));
        }
        const auto enc = encodeNpy(a);
        QCOMPARE(enc.size() % 64, std::size_t(a.bytes.size() % 64)); // data starts 64-aligned
        const NdArray b = parseNpy(enc.data(), enc.size(), "mem.npy");
        QCOMPARE(int(b.dtype), dtype);
        QCOMPARE(b.shape, (std::vector<i64>{3, 4}));
        QCOMPARE(b.bytes, a.bytes);
    }

    void npyVersionsAndEndianness() {
        // format 2.0 and 3.0 headers; big-endian float64 and int32
        double be[2] = {1.5, -3.0};
        std::vector<std::uint8_t> data(16);
        for (int e = 0; e < 2; ++e) {
            std::uint8_t raw[8];
            std::memcpy(raw, &be[e], 8);
            for (int i = 0; i < 8; ++i)
                data[e * 8 + i] = raw[7 - i];
        }
        for (int major : {1, 2, 3}) {
            const auto f =
                npyRaw("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }\n", data, major);
            const NdArray a = parseNpy(f.data(), f.size(), "be.npy");
            QCOMPARE(a.toDouble(), (std::vector<double>{1.5, -3.0}));
        }
        const auto f = npyRaw("{'descr': '>i4', 'fortran_order': False, 'shape': (1, 1), }",
                              {0x00, 0x00, 0x01, 0x02});
        QCOMPARE(parseNpy(f.data(), f.size(), "x.npy").toDouble()[0], 258.0);
        const auto scalar =
            npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", {0, 0, 0x80, 0x3f});
        const NdArray s = parseNpy(scalar.data(), scalar.size(), "s.npy");
        QCOMPARE(s.ndim(), 0);
        QCOMPARE(s.toFloat()[0], 1.0f);
    }

    void npyMalformed_data() {
        QTest::addColumn<QByteArray>("file");
        QTest::addColumn<QString>("expect");
        auto qb = [](const std::vector<std::uint8_t>& v) {
            return QByteArray(reinterpret_cast<const char*>(v.data()), int(v.size()));
        };
        const std::vector<std::uint8_t> eight(8, 0);
        QTest::newRow("empty") << QByteArray() << "too short";
        QTest::newRow("magic") << QByteArray("\x93NUMPZ\x01\x00\x10\x00{}", 12) << "wrong magic";
        QTest::newRow("version") << qb(npyRaw("{}", {}, 9)) << "version 9";
        QTest::newRow("header-truncated")
            << qb(npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", {})).left(20)
            << "truncated header";
        QTest::newRow("data-truncated")
            << qb(npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", eight))
            << "truncated data";
        QTest::newRow("fortran")
            << qb(npyRaw("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight))
            << "Fortran";
        QTest::newRow("object")
            << qb(npyRaw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", eight))
            << "object";
        QTest::newRow("complex")
            << qb(npyRaw("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", eight))
            << "complex";
        QTest::newRow("bool")
            << qb(npyRaw("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", eight))
            << "boolean";
        QTest::newRow("structured")
            << qb(npyRaw("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                         eight))
            << "structured";
        QTest::newRow("bad-shape")
            << qb(npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", eight))
            << "shape";
        QTest::newRow("huge-shape") << qb(npyRaw("{'descr': '<f4', 'fortran_order': False, "
                                                 "'shape': (999999999999, 999999999999), }",
                                                 eight))
                                    << "too large";
        QTest::newRow("missing-key")
            << qb(npyRaw("{'descr': '<f4', 'shape': (1,), }", eight)) << "lacks";
        QTest::newRow("garbage-header") << qb(npyRaw("hello", eight)) << "expected '{'";
    }
    void npyMalformed() {
        QFETCH(QByteArray, file);
        QFETCH(QString, expect);
        try {
            parseNpy(reinterpret_cast<const std::uint8_t*>(file.constData()),
                     std::size_t(file.size()), "bad.npy");
            QFAIL("accepted a malformed file");
        } catch (const InputError& e) {
            const QString msg = e.what();
            QVERIFY2(msg.startsWith("bad.npy"), qPrintable(msg));
            QVERIFY2(msg.contains(expect), qPrintable(msg));
        }
    }

    void safetensorsRoundTrip() {
        TensorFile f;
        f.tensors = {{"a", NdArray::fromFloatAs({1, 2, 3, 4}, {2, 2}, DType::F16)},
                     {"b", NdArray::fromFloatAs({1.5f, -2}, {2}, DType::BF16)},
                     {"c", NdArray::fromFloat({7, 8, 9}, {3})},
                     {"d", NdArray::fromFloatAs({0.25f}, {1, 1}, DType::F64)},
                     {"e", NdArray::fromInt32({-5, 6}, {2})},
                     {"f", NdArray::fromInt64({1LL << 40}, {1})}};
        f.metadata = {{"k", "v"}};
        QTemporaryDir dir;
        const std::string path = dir.filePath("t.safetensors").toStdString();
        writeSafetensors(path, f);
        const TensorFile g = readSafetensors(path);
        QCOMPARE(g.tensors.size(), f.tensors.size());
        for (std::size_t i = 0; i < f.tensors.size(); ++i) {
            QCOMPARE(g.tensors[i].first, f.tensors[i].first);
            QCOMPARE(g.tensors[i].second.shape, f.tensors[i].second.shape);
            QCOMPARE(int(g.tensors[i].second.dtype), int(f.tensors[i].second.dtype));
            QCOMPARE(g.tensors[i].second.bytes, f.tensors[i].second.bytes);
        }
        QCOMPARE(g.metadata.at("k"), std::string("v"));
        QCOMPARE(g.find("f")->toDouble()[0], double(1LL << 40));
        // loadArray: several tensors need a key
        QVERIFY_THROWS_EXCEPTION(InputError, loadArray(path));
        QCOMPARE(loadArray(path, "c").toFloat(), (std::vector<float>{7, 8, 9}));
    }

    void safetensorsMalformed_data() {
        QTest::addColumn<QByteArray>("file");
        QTest::addColumn<QString>("expect");
        auto qb = [](const std::vector<std::uint8_t>& v) {
            return QByteArray(reinterpret_cast<const char*>(v.data()), int(v.size()));
        };
        const std::string ok = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
        QTest::newRow("short") << QByteArray("abc") << "shorter";
        std::vector<std::uint8_t> huge(16, 0);
        huge[6] = 0x10; // header length 2^52
        QTest::newRow("oversized-header") << qb(huge) << "exceeds";
        std::vector<std::uint8_t> past = safetensorsRaw("{" + ok + "}", 8);
        past[0] = 200;
        QTest::newRow("header-past-end") << qb(past) << "runs past";
        QTest::newRow("not-json") << qb(safetensorsRaw("{nope", 8)) << "not JSON";
        QTest::newRow("not-object") << qb(safetensorsRaw("[1,2]", 8)) << "not a JSON object";
        QTest::newRow("offset-out-of-range")
            << qb(safetensorsRaw(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4))
            << "outside";
        QTest::newRow("size-mismatch")
            << qb(safetensorsRaw(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
            << "needs 12";
        QTest::newRow("overlap")
            << qb(safetensorsRaw(
                   R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                   8))
            << "overlap";
        QTest::newRow("duplicate")
            << qb(safetensorsRaw("{" + ok + "," + ok + "}", 8)) << "duplicate";
        QTest::newRow("dtype")
            << qb(safetensorsRaw(R"({"x":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 8))
            << "unsupported dtype";
        QTest::newRow("negative-shape")
            << qb(safetensorsRaw(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8))
            << "non-negative";
        QTest::newRow("missing-fields")
            << qb(safetensorsRaw(R"({"x":{"dtype":"F32"}})", 8)) << "needs dtype";
    }
    void safetensorsMalformed() {
        QFETCH(QByteArray, file);
        QFETCH(QString, expect);
        try {
            parseSafetensors(reinterpret_cast<const std::uint8_t*>(file.constData()),
                             std::size_t(file.size()), "bad.safetensors");
            QFAIL("accepted a malformed file");
        } catch (const InputError& e) {
            const QString msg = e.what();
            QVERIFY2(msg.startsWith("bad.safetensors"), qPrintable(msg));
            QVERIFY2(msg.contains(expect), qPrintable(msg));
        }
    }

    void fileErrors() {
        QTemporaryDir dir;
        QVERIFY_THROWS_EXCEPTION(InputError, readNpy(dir.filePath("missing.npy").toStdString()));
        QVERIFY_THROWS_EXCEPTION(InputError, readNpy(dir.path().toStdString()));
        QVERIFY_THROWS_EXCEPTION(InputError, loadArray(dir.filePath("x.txt").toStdString()));
        QVERIFY_THROWS_EXCEPTION(
            OutputError, writeFileBytes(dir.filePath("no/such/dir/x.npy").toStdString(), {1}));
        // /dev/full: every write fails with ENOSPC, as on a full disk
        if (QFile::exists("/dev/full"))
            QVERIFY_THROWS_EXCEPTION(
                OutputError, writeFileBytes("/dev/full", std::vector<std::uint8_t>(1 << 16, 1)));
        (void)bytesOf;
    }
};

QTEST_GUILESS_MAIN(TestIo)
#include "tst_io.moc"
