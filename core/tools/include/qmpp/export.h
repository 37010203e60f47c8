// One run's complete output folder (arrays, overlays, report.json), shared by the CLI and the
// studio so both write exactly the same files.
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/types.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qmpp {

struct RunRecord {
    std::string inputPath;
    InputOptions inputOptions;
    const LoadedInput* input = nullptr;
    MergeParams params;               // as requested (K may be 0: the budget decides)
    std::string uniformsPath;         // when uniforms were supplied from a file
    std::vector<MergeResult> results; // one per batch item
};

// The report.json document of a run.
nlohmann::ordered_json runReport(const RunRecord& run, const std::vector<std::string>& files);

// Writes every output of the run into `dir` by the output-folder protocol (temporary folder,
// moved into place at the end; a folder with results is refused unless `force`). Returns the
// file names written.
std::vector<std::string> exportRun(const std::string& dir, bool force, const RunRecord& run);

} // namespace qmpp
