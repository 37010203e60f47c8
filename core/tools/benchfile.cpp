// Reading bench JSON back and the profiler's derived numbers.
#include "qmpp/benchfile.h"
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace qmpp {

namespace {

// The check rows' kernel names where the bench names a kernel differently.
std::string checkName(const std::string& kernel) {
    if (kernel == "entropy_hidden" || kernel == "entropy_tokens") return "entropy_gram";
    return kernel;
}

std::string basicOf(const std::string& version) {
    if (version == "optimized") return "basic";
    if (version == "cuda") return "cuda-basic";
    return {};
}

bool sameCase(const TimingStats& a, const TimingStats& b) {
    return a.kernel == b.kernel && a.n == b.n && a.d == b.d && a.l == b.l;
}

} // namespace

BenchFile parseBenchJson(const nlohmann::json& j, const std::string& name) {
    if (!j.is_object() || !j.contains("results") || !j["results"].is_array() ||
        j["results"].empty())
        throw InputError(name + ": not a `qmpp bench --json` file (no results)");
    BenchFile f;
    f.name = name;
    if (j.contains("device"))
        f.device = j["device"].is_object()   ? j["device"].value("name", "")
                   : j["device"].is_string() ? j["device"].get<std::string>()
                                             : "";
    f.backend = j.value("backend", "");
    f.version =
        j.contains("version") && j["version"].is_string() ? j["version"].get<std::string>() : "";
    if (j.contains("ceilings") && j["ceilings"].is_object()) {
        const auto& c = j["ceilings"];
        f.ceilings = {c.value("copy_gbps", 0.0), c.value("gemm_fp16_tflops", 0.0),
                      c.value("gemm_fp32_tflops", 0.0)};
    }
    nlohmann::json errors = nlohmann::json::object();
    if (j.contains("verification") && j["verification"].is_object()) {
        const auto& v = j["verification"];
        if (v.contains("failed") && v["failed"].is_array())
            for (const auto& x : v["failed"])
                f.failed.push_back(x.get<std::string>());
        if (v.contains("max_rel_err") && v["max_rel_err"].is_object()) errors = v["max_rel_err"];
    }
    std::size_t index = 0;
    for (const auto& r : j["results"]) {
        const std::string where = name + ": result " + std::to_string(index++);
        if (!r.is_object() || !r.contains("kernel") || !r.contains("N") || !r.contains("median") ||
            !r["kernel"].is_string() || !r["N"].is_number_integer() || !r["median"].is_number())
            throw InputError(where + " lacks kernel, N or median");
        BenchRow row;
        TimingStats& t = row.t;
        t.kernel = r["kernel"].get<std::string>();
        t.version = r.value("version", "");
        t.precision = r.value("precision", "");
        t.n = r["N"].get<i64>();
        t.d = r.value("D", i64(0));
        t.l = r.value("L", i64(1));
        t.k = r.value("K", i64(0));
        t.repeats = r.value("repeats", 0);
        t.median = r["median"].get<double>();
        if (!(t.median > 0) || !std::isfinite(t.median))
            throw InputError(where + ": median is not a positive time");
        t.min = r.value("min", t.median);
        t.max = r.value("max", t.median);
        t.p10 = r.value("p10", t.min);
        t.p90 = r.value("p90", t.max);
        t.stddev = r.value("stddev", 0.0);
        t.tflops = r.value("tflops", 0.0);
        t.gbps = r.value("gbps", 0.0);
        t.verified = r.value("verified", false);
        const std::string key = checkName(t.kernel) + "/" + t.version + "/" + t.precision;
        if (r.contains("max_rel_err") && r["max_rel_err"].is_number())
            row.maxRelErr = r["max_rel_err"].get<double>();
        else if (errors.contains(key) && errors[key].is_number())
            row.maxRelErr = errors[key].get<double>();
        f.rows.push_back(std::move(row));
    }
    return f;
}

BenchFile loadBenchFile(const std::string& path) {
    const auto bytes = readFileBytes(path);
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded()) throw InputError(path + ": not JSON");
    return parseBenchJson(j, path);
}

double speedupOverBasic(const BenchFile& f, std::size_t i) {
    const TimingStats& t = f.rows.at(i).t;
    const std::string basic = basicOf(t.version);
    if (basic.empty()) return 0;
    for (const auto& r : f.rows)
        if (sameCase(r.t, t) && r.t.version == basic && r.t.precision == t.precision)
            return r.t.median / t.median;
    return 0;
}

double speedupFp16(const BenchFile& f, std::size_t i) {
    const TimingStats& t = f.rows.at(i).t;
    if (t.precision != "fp16") return 0;
    for (const auto& r : f.rows)
        if (sameCase(r.t, t) && r.t.version == t.version && r.t.precision == "fp32")
            return r.t.median / t.median;
    return 0;
}

double arithmeticIntensity(const TimingStats& t) {
    return t.gbps > 0 ? t.tflops * 1e3 / t.gbps : 0;
}

double roofline(double intensity, double peakTflops, double gbps) {
    return std::min(peakTflops, intensity * gbps * 1e-3);
}

namespace {

bool sameRow(const TimingStats& a, const TimingStats& b) {
    return a.kernel == b.kernel && a.version == b.version && a.precision == b.precision &&
           a.n == b.n && a.d == b.d && a.l == b.l && a.k == b.k;
}

const char* verdictName(BenchChange::Verdict v) {
    switch (v) {
    case BenchChange::Verdict::Slower:
        return "SLOWER";
    case BenchChange::Verdict::Faster:
        return "faster";
    case BenchChange::Verdict::New:
        return "new";
    case BenchChange::Verdict::Gone:
        return "gone";
    case BenchChange::Verdict::Same:
        break;
    }
    return "within noise";
}

} // namespace

std::vector<BenchChange> compareBench(const BenchFile& baseline,
                                      const std::vector<TimingStats>& now, double threshold) {
    std::vector<BenchChange> out;
    std::vector<bool> matched(baseline.rows.size(), false);
    for (const TimingStats& t : now) {
        BenchChange c;
        c.after = t;
        c.verdict = BenchChange::Verdict::New;
        for (std::size_t i = 0; i < baseline.rows.size(); ++i)
            if (!matched[i] && sameRow(baseline.rows[i].t, t)) {
                matched[i] = true;
                c.before = baseline.rows[i].t;
                c.ratio = t.median / c.before.median;
                const bool apart = t.p10 > c.before.p90 || t.p90 < c.before.p10;
                c.verdict = apart && c.ratio > 1 + threshold         ? BenchChange::Verdict::Slower
                            : apart && c.ratio < 1 / (1 + threshold) ? BenchChange::Verdict::Faster
                                                                     : BenchChange::Verdict::Same;
                break;
            }
        out.push_back(c);
    }
    for (std::size_t i = 0; i < baseline.rows.size(); ++i)
        if (!matched[i]) {
            BenchChange c;
            c.before = baseline.rows[i].t;
            c.verdict = BenchChange::Verdict::Gone;
            out.push_back(c);
        }
    std::stable_sort(out.begin(), out.end(),
                     [](const BenchChange& a, const BenchChange& b) { return a.ratio > b.ratio; });
    return out;
}

bool anySlower(const std::vector<BenchChange>& changes) {
    return std::any_of(changes.begin(), changes.end(), [](const BenchChange& c) {
        return c.verdict == BenchChange::Verdict::Slower;
    });
}

std::string benchChangeTable(const std::vector<BenchChange>& changes, double threshold) {
    std::ostringstream os;
    os << std::left << std::setw(40) << "case" << std::right << std::setw(12) << "old ms"
       << std::setw(12) << "new ms" << std::setw(9) << "ratio"
       << "  verdict\n";
    int slower = 0, faster = 0;
    for (const BenchChange& c : changes) {
        const TimingStats& t = c.verdict == BenchChange::Verdict::Gone ? c.before : c.after;
        std::ostringstream name;
        name << t.kernel << " " << t.version << " " << t.precision << " N=" << t.n;
        if (t.d) name << " D=" << t.d;
        if (t.l > 1) name << " L=" << t.l;
        os << std::left << std::setw(40) << name.str() << std::right << std::fixed
           << std::setprecision(4);
        if (c.verdict != BenchChange::Verdict::New)
            os << std::setw(12) << c.before.median;
        else
            os << std::setw(12) << "-";
        if (c.verdict != BenchChange::Verdict::Gone)
            os << std::setw(12) << c.after.median;
        else
            os << std::setw(12) << "-";
        if (c.ratio > 0)
            os << std::setw(9) << std::setprecision(3) << c.ratio;
        else
            os << std::setw(9) << "-";
        os << "  " << verdictName(c.verdict) << "\n";
        slower += c.verdict == BenchChange::Verdict::Slower;
        faster += c.verdict == BenchChange::Verdict::Faster;
    }
    os << slower << " slower and " << faster << " faster beyond noise (p10..p90 apart and the "
       << "median ratio past " << std::setprecision(1) << 100 * threshold << " %)\n";
    return os.str();
}

} // namespace qmpp
