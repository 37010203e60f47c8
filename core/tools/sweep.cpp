// Budget sweeps (SPEC step 7 metrics for each method and budget).
#include "qmpp/sweep.h"

#include "qmpp/error.h"
#include "qmpp/report.h"

#include <iomanip>
#include <sstream>

namespace qmpp {

std::vector<SweepRow> runSweep(const TokenSet& t, const MergeParams& base,
                               const std::vector<Method>& methods,
                               const std::vector<double>& budgets, const Progress& progress) {
    if (methods.empty() || budgets.empty())
        throw UsageError("a sweep needs at least one method and one budget");
    for (double b : budgets)
        if (!(b > 0 && b <= 1))
            throw UsageError("--budgets: each budget must lie in (0, 1], got " + std::to_string(b));
    std::vector<SweepRow> rows;
    MergeSession session;
    const i64 total = static_cast<i64>(methods.size() * budgets.size());
    { // warm-up (threads, generators, device buffers) so the first point's time is not set-up
        MergeParams p = base;
        p.method = methods.front();
        p.k = 0;
        p.budget = budgets.front();
        session.run(t, p);
    }
    for (Method m : methods)
        for (double b : budgets) {
            MergeParams p = base;
            p.method = m;
            p.k = 0;
            p.budget = b;
            const MergeResult r = session.run(t, p);
            SweepRow row;
            row.method = toString(m);
            row.budget = b;
            row.k = r.k;
            row.metrics = r.metrics;
            row.losses = r.losses;
            row.ms = r.timings.empty() ? 0.0 : r.timings.back().ms;
            rows.push_back(std::move(row));
            if (progress && !progress(static_cast<i64>(rows.size()), total)) throw Cancelled();
        }
    return rows;
}

const std::vector<std::pair<std::string, double (*)(const SweepRow&)>>& sweepColumns() {
    static const std::vector<std::pair<std::string, double (*)(const SweepRow&)>> cols = {
        {"reconstruction_error", [](const SweepRow& r) { return r.metrics.reconstructionError; }},
        {"mean_cosine", [](const SweepRow& r) { return r.metrics.meanCosine; }},
        {"reconstruction_error_nearest_kept",
         [](const SweepRow& r) { return r.metrics.reconstructionErrorNearestKept; }},
        {"mean_cosine_nearest_kept",
         [](const SweepRow& r) { return r.metrics.meanCosineNearestKept; }},
        {"norm_mass_retention", [](const SweepRow& r) { return r.metrics.normMassRetention; }},
        {"saliency_retention", [](const SweepRow& r) { return r.metrics.saliencyRetention; }},
        {"ar_loss", [](const SweepRow& r) { return r.losses.ar; }},
        {"time_ms", [](const SweepRow& r) { return r.ms; }},
    };
    return cols;
}

std::string sweepCsv(const std::vector<SweepRow>& rows) {
    std::ostringstream os;
    os << std::setprecision(9) << "method,budget,k";
    for (const auto& c : sweepColumns())
        os << ',' << c.first;
    os << '\n';
    for (const auto& r : rows) {
        os << r.method << ',' << r.budget << ',' << r.k;
        for (const auto& c : sweepColumns())
            os << ',' << c.second(r);
        os << '\n';
    }
    return os.str();
}

nlohmann::ordered_json sweepJson(const std::vector<SweepRow>& rows) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
        nlohmann::ordered_json o;
        o["method"] = r.method;
        o["budget"] = r.budget;
        o["k"] = r.k;
        for (const auto& c : sweepColumns())
            o[c.first] = c.second(r);
        o["fidelity_ok"] = r.metrics.fidelityOk;
        j.push_back(std::move(o));
    }
    return j;
}

} // namespace qmpp
