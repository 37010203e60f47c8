// Timing statistics in the one schema used everywhere (SPEC "Kernels"), and the CPU benchmark.
#pragma once

#include "qmpp/types.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <map>
#include <utility>

namespace qmpp {

struct TimingStats {
    std::string kernel, version, precision;
    i64 n = 0, d = 0, l = 0, k = 0;
    int repeats = 0;
    double median = 0, min = 0, max = 0, p10 = 0, p90 = 0, stddev = 0; // milliseconds
    double tflops = 0, gbps = 0; // achieved, from the flop and byte counts of the stage
    bool verified = false;
};

// Statistics of repeated measurements (ms); percentiles by linear interpolation.
TimingStats summarize(const std::vector<double>& ms);

// Per-stage times of repeated runs (MergeResult::timings), kept in pipeline order.
class StageSamples {
  public:
    void add(const MergeResult& r);
    // (stage, statistics of its times), in the order the stages first appeared.
    std::vector<std::pair<std::string, TimingStats>> stats() const;

  private:
    std::vector<std::string> m_order;
    std::map<std::string, std::vector<double>> m_ms;
};
nlohmann::ordered_json toJson(const TimingStats& s);
// The same rows as CSV (a header with SPEC's schema, one line per row).
std::string timingsCsv(const std::vector<TimingStats>& rows);
// Chrome trace JSON (opens in Perfetto and chrome://tracing): one complete event (ph "X") per
// row, its duration the row's median; rows of one version x precision share a track and follow
// each other, so a pipeline's stages read as its timeline. args carry the whole row.
nlohmann::ordered_json chromeTrace(const std::vector<TimingStats>& rows, const std::string& device);

// Tokens [N, D] for benchmarks and checks: low-rank structure plus noise, a few outliers
// (never all zeros), reproducible from the seed.
std::vector<float> syntheticTokens(i64 n, i64 d, std::uint64_t seed);

struct BenchOptions {
    std::vector<i64> tokens = {196, 1024, 4096};
    i64 dim = 768;
    std::vector<int> layers = {1, 12};
    int repeats = 7;
    int warmup = 1;
    double budget = 0.2;
    ClusterMethod cluster = ClusterMethod::Seeded;
    // GPU: the whole pipeline from this many hidden-state layers (0: none), optimized backend
    int hiddenLayers = 12;
    // GPU: basic kernels are timed only up to this N (they are slow on purpose)
    i64 basicMaxN = 1 << 30;
};

// Runs the CPU pipeline per (N, L): each stage and the whole pipeline, verified first.
std::vector<TimingStats> benchCpu(const BenchOptions& o, std::ostream& log);

// GPU (builds with CUDA): every kernel x version x precision, verified first by the quick check
// (a variant that fails is not timed), cuBLAS QK^T references, measured device ceilings (in
// meta["ceilings"]), and the whole pipeline host-in/host-out. `withOptimized` adds the
// optimized versions and the `cuda` backend.
std::vector<TimingStats> benchCuda(const BenchOptions& o, bool withOptimized, std::ostream& log,
                                   nlohmann::ordered_json& meta);

} // namespace qmpp

namespace qmpp {

struct VideoOptions;

// Frames already tokenized ([F, N, D] .npy/.safetensors, from `qmpp tokenize VIDEO`): the whole
// pipeline per frame, host tokens in -> host result out, one backend kept across frames. The
// first frame is verified against the CPU backend first. Rows: "frame_pipeline" (per frame).
std::vector<TimingStats> benchFrames(const std::string& path, const MergeParams& p, int repeats,
                                     std::ostream& log, nlohmann::ordered_json& meta);

// Plays `count` frames of a video through decode, tokenize and merge (looping the clip), as the
// studio does; resident memory sampled every 100 frames (meta["rss_mib"]). Rows: "video_frame"
// (decode + tokenize + merge) and "frame_pipeline" (merge alone).
std::vector<TimingStats> benchVideo(const std::string& path, const VideoOptions& o, i64 count,
                                    const MergeParams& p, std::ostream& log,
                                    nlohmann::ordered_json& meta);

// Resident set size of this process in MiB (/proc/self/statm), 0 where unknown.
double residentMiB();

// The studio's "Measure on this machine" (and any caller's): each backend variant on one input,
// per stage, verified first as `qmpp bench` verifies (qmpp check --quick in this process; a
// variant that fails is marked unverified), five runs after a warm-up. On a GPU: cuda-basic and
// cuda, FP32 and FP16; otherwise the CPU backend. Returns bench JSON (`results` rows in the
// timing schema, `verification`, `device`); `error` collects what could not be measured.
// `progress` counts variants (returning false stops: Cancelled).
nlohmann::json profileInput(const TokenSet& t, const MergeParams& base, bool gpu,
                            std::string& error, const std::function<bool(i64, i64)>& progress = {});

} // namespace qmpp
