// A `qmpp bench --json` file read back (from this machine or a GPU server), with what the
// profiler derives from it: each row's verification error, its speed-up over the basic version
// and of FP16 over FP32, its arithmetic intensity, and the device's measured ceilings.
#pragma once

#include "qmpp/bench.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qmpp {

struct Ceilings {
    double copyGbps = 0, fp16Tflops = 0, fp32Tflops = 0; // 0: not measured (a CPU file)
};

struct BenchRow {
    TimingStats t;
    double maxRelErr = -1; // worst relative error of the variant in `qmpp check` (-1: not checked);
                           // a row's own "max_rel_err", else the file's verification.max_rel_err
};

struct BenchFile {
    std::string name, device, backend, version;
    Ceilings ceilings;
    std::vector<BenchRow> rows;
    std::vector<std::string> failed; // kernel/version/precision that failed verification
};

// InputError naming `name` when the document is not a bench file (no results, a row without
// kernel, N or median, a median that is not a positive number).
BenchFile parseBenchJson(const nlohmann::json& j, const std::string& name);
BenchFile loadBenchFile(const std::string& path);

// Speed-up of row i over the same kernel, precision, N, D and L in the basic version
// ("optimized" over "basic", "cuda" over "cuda-basic"); 0 when the file has no such pair.
double speedupOverBasic(const BenchFile& f, std::size_t i);
// Speed-up of an FP16 row over the FP32 row of the same kernel, version, N, D and L; 0 when
// the row is not FP16 or has no FP32 twin.
double speedupFp16(const BenchFile& f, std::size_t i);
// Flops per byte moved (0 when the row has no byte count).
double arithmeticIntensity(const TimingStats& t);
// The roofline: attainable TFLOP/s at an intensity, min(peak, intensity x bandwidth).
double roofline(double intensity, double peakTflops, double gbps);

// A row of a new bench run against the same case (kernel, version, precision, N, D, L, K) in a
// baseline file: a regression gate. "Beyond noise" means the two runs' p10..p90 ranges do not
// overlap and the ratio of medians passes the threshold (new/old > 1 + threshold: slower;
// < 1 / (1 + threshold): faster).
struct BenchChange {
    TimingStats before, after; // before.repeats == 0: the case is new (no baseline row)
    double ratio = 0;          // after.median / before.median
    enum class Verdict { Same, Slower, Faster, New, Gone } verdict = Verdict::Same;
};
std::vector<BenchChange> compareBench(const BenchFile& baseline,
                                      const std::vector<TimingStats>& now, double threshold);
// The comparison as a table: one line per case, sorted by ratio (slowest first), and a summary.
std::string benchChangeTable(const std::vector<BenchChange>& changes, double threshold);
bool anySlower(const std::vector<BenchChange>& changes);

} // namespace qmpp
