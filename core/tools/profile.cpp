// profileInput (qmpp/bench.h): the per-stage profile of one input on this machine's variants.
#include "qmpp/bench.h"
#include "qmpp/check.h"
#include "qmpp/engine.h"
#include "qmpp/progress.h"

#include <map>
#include <set>
#include <sstream>

namespace qmpp {

nlohmann::json profileInput(const TokenSet& t, const MergeParams& base, bool gpu,
                            std::string& error, const std::function<bool(i64, i64)>& progress) {
    nlohmann::json bench;
    bench["device"] = "this machine";
    bench["results"] = nlohmann::json::array();
    bench["backend"] = gpu ? "cuda" : "cpu";
    const std::vector<BackendKind> kinds =
        gpu ? std::vector<BackendKind>{BackendKind::CudaBasic, BackendKind::Cuda}
            : std::vector<BackendKind>{BackendKind::Cpu};
    const std::vector<Precision> precs =
        gpu ? std::vector<Precision>{Precision::FP32, Precision::FP16}
            : std::vector<Precision>{Precision::FP32};
    const i64 total = i64(kinds.size() * precs.size()) + 1;
    i64 done = 0;
    auto step = [&] {
        if (progress && !progress(++done, total)) throw Cancelled();
    };
    // verify first: a variant whose kernels fail their check is marked so
    std::map<std::string, double> worst; // check version/precision -> largest relative error
    std::set<std::string> failed;
    bool checked = false;
    try {
        CheckOptions co;
        co.quick = true;
        co.backend = gpu ? "all" : "cpu";
        co.seed = 1;
        std::ostringstream log;
        for (const auto& r : runChecks(co, log)) {
            const std::string key = r.version + "/" + r.precision;
            worst[key] = std::max(worst[key], r.maxRelErr);
            if (!r.pass) failed.insert(key);
        }
        checked = true;
    } catch (const std::exception& e) {
        error = std::string("the kernels could not be verified (") + e.what() +
                "); the times are shown as unverified";
    }
    bench["verification"] = {{"command", "qmpp check --quick (same process)"},
                             {"ran", checked},
                             {"failed", std::vector<std::string>(failed.begin(), failed.end())}};
    step();
    for (auto kind : kinds)
        for (auto prec : precs) {
            MergeParams p = base;
            p.backend = kind;
            p.precision = prec;
            p.progress = nullptr;
            // the check's name for this backend's kernels
            const std::string version = kind == BackendKind::CudaBasic ? "basic"
                                        : kind == BackendKind::Cuda    ? "optimized"
                                                                       : "cpu";
            const std::string key = version + "/" + toString(prec);
            const bool verified = checked && worst.count(key) && !failed.count(key) &&
                                  !failed.count(std::string(toString(kind)) + "/fp32");
            try {
                StageSamples stages; // five runs after a warm-up, one backend for all six
                MergeResult r;
                MergeSession session;
                for (int rep = 0; rep < 6; ++rep) {
                    r = session.run(t, p);
                    if (rep > 0) stages.add(r);
                }
                bench["device"] = r.device;
                for (const auto& [stage, st] : stages.stats()) {
                    nlohmann::json row = {{"kernel", stage},
                                          {"version", r.backend},
                                          {"precision", r.precision},
                                          {"N", r.n},
                                          {"D", r.d},
                                          {"L", r.layers},
                                          {"K", r.k},
                                          {"median", st.median},
                                          {"min", st.min},
                                          {"max", st.max},
                                          {"p10", st.p10},
                                          {"p90", st.p90},
                                          {"stddev", st.stddev},
                                          {"repeats", st.repeats},
                                          {"verified", verified}};
                    if (worst.count(key)) row["max_rel_err"] = worst[key];
                    bench["results"].push_back(row);
                }
            } catch (const Cancelled&) {
                throw;
            } catch (const std::exception& e) {
                error = e.what();
            }
            step();
        }
    return bench;
}

} // namespace qmpp
