// Budget sweep: each method over a list of budgets on one token set, with the label-free
// metrics, the AR loss and the time of every point; written as CSV, JSON and a PNG plot.
#pragma once

#include "qmpp/engine.h"
#include "qmpp/progress.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qmpp {

struct SweepRow {
    std::string method;
    double budget = 0;
    i64 k = 0;
    Metrics metrics;
    Losses losses;
    double ms = 0; // the pipeline's total
};

// Runs every (method, budget) pair with `base`'s other parameters. `progress` may cancel
// (Cancelled).
std::vector<SweepRow> runSweep(const TokenSet& t, const MergeParams& base,
                               const std::vector<Method>& methods,
                               const std::vector<double>& budgets, const Progress& progress = {});

// The metrics a sweep reports, in order: (column name, value of a row).
const std::vector<std::pair<std::string, double (*)(const SweepRow&)>>& sweepColumns();
std::string sweepCsv(const std::vector<SweepRow>& rows);
nlohmann::ordered_json sweepJson(const std::vector<SweepRow>& rows);
// One panel per metric, one curve per method, budget on x (OpenCV; InputError without it).
void writeSweepPlot(const std::vector<SweepRow>& rows, const std::string& path);

} // namespace qmpp
