// CPU benchmark: per-stage and whole-pipeline statistics, each run's output verified first.
#include "qmpp/bench.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include <sstream>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <ostream>
#include <random>

namespace qmpp {

namespace {

double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const double pos = q * double(sorted.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

// Invariants any correct result satisfies: pi sums to 1, labels index the merged sequence in
// first-appearance order, sizes add up, each merged token is its group's mass-weighted mean.
bool verifyResult(const TokenSet& t, const MergeResult& r) {
    double piSum = 0;
    for (float v : r.pi)
        piSum += v;
    if (std::abs(piSum - 1.0) > 1e-4) return false;
    std::vector<i64> count(static_cast<std::size_t>(r.k), 0);
    i64 next = 0;
    for (i64 i = 0; i < t.n; ++i) {
        const i64 g = r.labels[i];
        if (g < 0 || g >= r.k || g > next) return false;
        if (g == next) ++next;
        ++count[g];
    }
    if (count != r.groupSizes) return false;
    std::vector<double> acc(static_cast<std::size_t>(r.k * t.d), 0.0),
        ms(static_cast<std::size_t>(r.k), 0.0);
    for (i64 i = 0; i < t.n; ++i) {
        ms[r.labels[i]] += r.mass[i];
        for (i64 j = 0; j < t.d; ++j)
            acc[r.labels[i] * t.d + j] += double(r.mass[i]) * t.x[i * t.d + j];
    }
    for (i64 g = 0; g < r.k; ++g)
        for (i64 j = 0; j < t.d; ++j) {
            const double ref = acc[g * t.d + j] / ms[g];
            if (std::abs(r.merged[g * t.d + j] - ref) > 1e-4 + 1e-4 * std::abs(ref)) return false;
        }
    return true;
}

// Floating-point operations and bytes of each stage, for achieved TFLOP/s and GB/s.
// `refine` is the number of refinement rounds the seeded clustering actually ran.
void workOf(const std::string& stage, i64 n, i64 d, i64 l, i64 k, int refine, double& flops,
            double& bytes) {
    const double N = double(n), D = double(d), L = double(l), K = double(k);
    flops = bytes = 0;
    if (stage == "saliency") {
        flops = 2 * N * N * D + 4 * L * N * N; // one Gram product, then per-layer softmax sums
        bytes = 4 * N * D + 4 * L * N;
    } else if (stage == "gumbel") {
        flops = 6 * N;
        bytes = 4 * 4 * N;
    } else if (stage == "cluster") {
        flops = 2 * N * K * D * (1 + refine);
        bytes = 4 * N * D * (1 + refine);
    } else if (stage == "merge") {
        flops = 2 * N * D;
        bytes = 4 * (N * D + K * D);
    } else if (stage == "ar_loss") {
        flops = 2 * (K - 1) * 2 * (2 * 256 * D);
        bytes = 4 * (4 * 256 * D + K * D);
    } else if (stage == "metrics") {
        flops = 6 * N * D;
        bytes = 4 * (N * D + K * D);
    } else if (stage == "total") {
        double f, b;
        for (const char* s : {"saliency", "gumbel", "cluster", "merge", "ar_loss", "metrics"}) {
            workOf(s, n, d, l, k, refine, f, b);
            flops += f;
            bytes += b;
        }
    }
}

} // namespace

TimingStats summarize(const std::vector<double>& ms) {
    TimingStats s;
    s.repeats = static_cast<int>(ms.size());
    if (ms.empty()) return s;
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    s.min = v.front();
    s.max = v.back();
    s.median = percentile(v, 0.5);
    s.p10 = percentile(v, 0.1);
    s.p90 = percentile(v, 0.9);
    double mean = 0;
    for (double x : v)
        mean += x;
    mean /= double(v.size());
    double var = 0;
    for (double x : v)
        var += (x - mean) * (x - mean);
    s.stddev = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
    return s;
}

void StageSamples::add(const MergeResult& r) {
    for (const auto& t : r.timings) {
        if (!m_ms.count(t.stage)) m_order.push_back(t.stage);
        m_ms[t.stage].push_back(t.ms);
    }
}

std::vector<std::pair<std::string, TimingStats>> StageSamples::stats() const {
    std::vector<std::pair<std::string, TimingStats>> out;
    for (const auto& stage : m_order)
        out.emplace_back(stage, summarize(m_ms.at(stage)));
    return out;
}

nlohmann::ordered_json toJson(const TimingStats& s) {
    return {{"kernel", s.kernel},
            {"version", s.version},
            {"precision", s.precision},
            {"N", s.n},
            {"D", s.d},
            {"L", s.l},
            {"K", s.k},
            {"repeats", s.repeats},
            {"median", s.median},
            {"min", s.min},
            {"max", s.max},
            {"p10", s.p10},
            {"p90", s.p90},
            {"stddev", s.stddev},
            {"tflops", s.tflops},
            {"gbps", s.gbps},
            {"verified", s.verified}};
}

std::string timingsCsv(const std::vector<TimingStats>& rows) {
    std::ostringstream os;
    os << std::setprecision(9);
    os << "kernel,version,precision,N,D,L,K,repeats,median,min,max,p10,p90,stddev,tflops,gbps,"
          "verified\n";
    for (const auto& s : rows)
        os << s.kernel << ',' << s.version << ',' << s.precision << ',' << s.n << ',' << s.d << ','
           << s.l << ',' << s.k << ',' << s.repeats << ',' << s.median << ',' << s.min << ','
           << s.max << ',' << s.p10 << ',' << s.p90 << ',' << s.stddev << ',' << s.tflops << ','
           << s.gbps << ',' << (s.verified ? "true" : "false") << '\n';
    return os.str();
}

nlohmann::ordered_json chromeTrace(const std::vector<TimingStats>& rows,
                                   const std::string& device) {
    using json = nlohmann::ordered_json;
    json events = json::array();
    std::map<std::string, std::pair<int, double>>
        tracks; // version/precision -> (tid, next ts in us)
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", 1},
                      {"args", {{"name", "qmpp bench: " + device}}}});
    for (const auto& s : rows) {
        const std::string track = s.version + " " + s.precision;
        auto it = tracks.find(track);
        if (it == tracks.end()) {
            const int tid = static_cast<int>(tracks.size()) + 1;
            it = tracks.emplace(track, std::make_pair(tid, 0.0)).first;
            events.push_back({{"name", "thread_name"},
                              {"ph", "M"},
                              {"pid", 1},
                              {"tid", tid},
                              {"args", {{"name", track}}}});
        }
        const double dur = s.median * 1000.0; // microseconds
        events.push_back(
            {{"name", s.kernel + " N=" + std::to_string(s.n) + " L=" + std::to_string(s.l)},
             {"cat", s.version},
             {"ph", "X"},
             {"ts", it->second.second},
             {"dur", dur},
             {"pid", 1},
             {"tid", it->second.first},
             {"args", toJson(s)}});
        it->second.second += dur;
    }
    return {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
}

std::vector<float> syntheticTokens(i64 n, i64 d, std::uint64_t seed) {
    // Values from mt19937_64's raw output (fully specified by the standard), turned into
    // normals by Box-Muller: identical on every platform.
    std::mt19937_64 gen(seed);
    auto unif = [&] { return (double(gen() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
    auto normal = [&] {
        return std::sqrt(-2 * std::log(unif())) * std::cos(6.283185307179586 * unif());
    };
    const i64 rank = std::min<i64>(8, d);
    std::vector<double> basis(static_cast<std::size_t>(rank * d));
    for (auto& b : basis)
        b = normal();
    std::vector<float> x(static_cast<std::size_t>(n * d));
    for (i64 i = 0; i < n; ++i) {
        std::vector<double> c(static_cast<std::size_t>(rank));
        for (auto& v : c)
            v = normal();
        const double scale = (i % 97 == 13) ? 10.0 : 1.0; // outliers
        for (i64 j = 0; j < d; ++j) {
            double v = 0.3 * normal();
            for (i64 r = 0; r < rank; ++r)
                v += c[r] * basis[r * d + j] / std::sqrt(double(rank));
            x[i * d + j] = static_cast<float>(scale * v);
        }
    }
    return x;
}

std::vector<TimingStats> benchCpu(const BenchOptions& o, std::ostream& log) {
    std::vector<TimingStats> out;
    auto backend = makeCpuBackend();
    log << "device: " << backend->device() << "\n";
    log << std::left << std::setw(10) << "stage" << std::right << std::setw(7) << "N"
        << std::setw(5) << "L" << std::setw(6) << "K" << std::setw(11) << "median ms"
        << std::setw(10) << "min" << std::setw(10) << "p90" << std::setw(10) << "GFLOP/s"
        << "  verified\n";
    for (i64 n : o.tokens)
        for (int l : o.layers) {
            TokenSet t;
            t.n = n;
            t.d = o.dim;
            t.x = syntheticTokens(n, o.dim, 1234 + n);
            MergeParams p;
            p.budget = o.budget;
            p.layers = l;
            p.cluster = o.cluster;
            p.backend = BackendKind::Cpu;
            validate(t, p);
            const i64 k = resolveK(n, p);
            std::map<std::string, std::vector<double>> ms;
            std::vector<std::string> order;
            bool verified = true;
            int rounds = p.refine;
            for (int rep = 0; rep < o.warmup + o.repeats; ++rep) {
                const MergeResult r = backend->run(t, p, k);
                if (rep == 0) {
                    verified = verifyResult(t, r);
                    rounds = r.refineRounds;
                }
                if (rep < o.warmup) continue;
                for (const auto& s : r.timings) {
                    if (!ms.count(s.stage)) order.push_back(s.stage);
                    ms[s.stage].push_back(s.ms);
                }
            }
            for (const auto& stage : order) {
                TimingStats s = summarize(ms[stage]);
                s.kernel = stage == "total" ? "pipeline" : stage;
                s.version = stage == "cluster" ? std::string("cpu-") + toString(o.cluster) : "cpu";
                s.precision = "fp32";
                s.n = n;
                s.d = o.dim;
                s.l = l;
                s.k = k;
                s.verified = verified;
                double flops, bytes;
                workOf(stage, n, o.dim, l, k, rounds, flops, bytes);
                if (stage == "cluster" && o.cluster != ClusterMethod::Seeded)
                    flops = 2.0 * double(n) * double(n) * double(o.dim) *
                            (o.cluster == ClusterMethod::Reference ? 1.0 + double(n) / double(o.dim)
                                                                   : 1.0);
                s.tflops = s.median > 0 ? flops / (s.median * 1e9) : 0;
                s.gbps = s.median > 0 ? bytes / (s.median * 1e6) : 0;
                log << std::left << std::setw(10) << s.kernel << std::right << std::setw(7) << n
                    << std::setw(5) << l << std::setw(6) << k << std::fixed << std::setprecision(3)
                    << std::setw(11) << s.median << std::setw(10) << s.min << std::setw(10) << s.p90
                    << std::setprecision(1) << std::setw(10) << s.tflops * 1e3 << "  "
                    << (verified ? "yes" : "NO") << "\n";
                log.unsetf(std::ios::fixed);
                out.push_back(s);
            }
        }
    return out;
}

} // namespace qmpp
