// Helpers shared by the tests.
#pragma once

#include "qmpp/types.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <map>
#include <random>
#include <vector>

namespace qmpp::test {

// True when two labelings describe the same partition (ids may differ).
inline bool samePartition(const std::vector<i64>& a, const std::vector<i64>& b) {
    if (a.size() != b.size()) return false;
    std::map<i64, i64> ab, ba;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto [it1, new1] = ab.emplace(a[i], b[i]);
        auto [it2, new2] = ba.emplace(b[i], a[i]);
        if (it1->second != b[i] || it2->second != a[i]) return false;
    }
    return true;
}

inline std::vector<float> randomTokens(i64 n, i64 d, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(n * d));
    for (auto& v : x)
        v = nd(gen);
    return x;
}

inline TokenSet tokenSet(std::vector<float> x, i64 n, i64 d) {
    TokenSet t;
    t.n = n;
    t.d = d;
    t.x = std::move(x);
    return t;
}

// The CLI (QMPP_CLI) run to completion: exit code (-1: did not finish, -2: crashed) and output.
struct CliResult {
    int code = -1;
    QString out, err;
};
// `timeoutMs`: a run still going then is killed and reported as not finished (code -1).
inline CliResult runQmpp(const QStringList& args, int timeoutMs = 300000) {
    QProcess p;
    p.start(QMPP_CLI, args);
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished(5000);
        return {};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2,
            QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

} // namespace qmpp::test
