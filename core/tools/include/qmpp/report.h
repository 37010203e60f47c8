// What a run writes: arrays (.npy, .safetensors), report.json, and the output-folder protocol
// (fresh temporary folder, moved into place at the end; a folder with results needs force).
#pragma once

#include "qmpp/types.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qmpp {

// `budget` is the one asked for, or (K given) K / n; `k_from` says which decided K.
nlohmann::ordered_json paramsJson(const MergeParams& p, i64 k, i64 n = 0);
nlohmann::ordered_json lossesJson(const Losses& l);
nlohmann::ordered_json metricsJson(const Metrics& m);
struct MethodDiagnostics;
// The report's "diagnostics" object (qmpp/diagnostics.h): its fields (NaN as null) and the
// warnings at temperature `tau`.
nlohmann::ordered_json diagnosticsJson(const MethodDiagnostics& d, double tau);
nlohmann::ordered_json timingsJson(const std::vector<StageTiming>& t);
// One result: k, losses, metrics, timings_ms, backend, device, sources, notes.
nlohmann::ordered_json resultJson(const MergeResult& r);

// merged.npy, labels.npy, saliency.npy, mask.npy, mass.npy and result.safetensors; with
// `batched` every array gains a leading B axis. Returns the file names written.
std::vector<std::string> writeResultArrays(const std::string& dir,
                                           const std::vector<MergeResult>& results, bool batched);

// The names a run may write into its output folder.
const std::vector<std::string>& outputFileNames();
// The folders of results qmpp writes (an eval's overlays/, a report's model/ and model-sweep/):
// refused without --force like the files, and replaced whole with it.
const std::vector<std::string>& outputFolderNames();

// Output-folder protocol. Files are written into tempDir() (a fresh folder beside the target);
// commit() moves them into the target. Without commit() (an exception), the temporary folder
// is removed and the target is left as it was.
// Whether `path` lies inside folder `dir` (both resolved: links, "..", relative paths).
bool insideFolder(const std::string& path, const std::string& dir);
// `qmpp run`'s inputs may not be results it is about to replace: InputError (exit 3) when one of
// `inputs` lies in `out` under one of outputFileNames().
void requireInputsOutside(const std::vector<std::string>& inputs, const std::string& out);
// `qmpp report DIR --out FILE`: FILE may not be one of DIR's results (other than report.html),
// and an existing FILE elsewhere is replaced only with --force. The default, DIR/report.html,
// is the report's own file.
void requireReportTarget(const std::string& dir, const std::string& out, bool force);

class OutputDir {
  public:
    // InputError (exit 3) if target is a file or already holds results and !force;
    // RuntimeFailure if the temporary folder cannot be made (not writable...).
    OutputDir(const std::string& target, bool force);
    ~OutputDir();
    OutputDir(const OutputDir&) = delete;
    OutputDir& operator=(const OutputDir&) = delete;

    // The refusals of the constructor alone, with nothing created: a caller checks early.
    static void checkTarget(const std::string& target, bool force);

    const std::string& tempDir() const { return m_temp; }
    std::string path(const std::string& name) const { return m_temp + "/" + name; }
    void commit();

  private:
    std::string m_target, m_temp;
    bool m_existed = false; // the target existed when the run began (--force)
    bool m_committed = false;
};

} // namespace qmpp
