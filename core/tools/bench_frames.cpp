// Per-frame benchmarks: pre-tokenized frames (GPU servers) and video playback (decode included).
#include "qmpp/bench.h"

#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/videoexport.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <unistd.h>

namespace qmpp {

namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

TimingStats frameRow(const char* kernel, const std::vector<double>& ms, const TokenSet& t,
                     const MergeResult& r, const MergeParams& p, bool verified) {
    TimingStats s = summarize(ms);
    s.kernel = kernel;
    s.version = r.backend;
    s.precision = toString(p.precision);
    s.n = t.n;
    s.d = t.d;
    s.l = r.layers;
    s.k = r.k;
    s.verified = verified;
    return s;
}

void logRow(std::ostream& log, const TimingStats& s, const char* what) {
    log << std::fixed << std::setprecision(3) << "  " << std::left << std::setw(15) << s.kernel
        << std::right << " N=" << s.n << " D=" << s.d << " K=" << s.k << "  median " << s.median
        << " ms  p10 " << s.p10 << "  p90 " << s.p90 << "  max " << s.max << "  ("
        << std::setprecision(1) << (s.median > 0 ? 1000.0 / s.median : 0.0) << " " << what
        << "/s)\n";
}

// The first frame on the chosen backend against the CPU backend: the same grouping quality.
bool verifyAgainstCpu(const TokenSet& t, const MergeParams& p, const MergeResult& r,
                      std::ostream& log) {
    if (r.backend == "cpu") return true;
    MergeParams cpu = p;
    cpu.backend = BackendKind::Cpu;
    cpu.precision = Precision::FP32;
    const MergeResult ref = runMerge(t, cpu);
    const double a = r.metrics.reconstructionError, b = ref.metrics.reconstructionError;
    const double tol = (p.precision == Precision::FP16 ? 0.03 : 0.01) * b + 1e-4;
    const bool ok = r.k == ref.k && std::isfinite(a) && std::abs(a - b) <= tol;
    log << "  verify frame 0 against the CPU backend: reconstruction_error " << a << " vs " << b
        << (ok ? " (ok)\n" : " (FAILED)\n");
    return ok;
}

// Where a frame's time goes: each stage's median, and what lies outside the stages.
void printStages(std::ostream& log, const StageSamples& stages, double wallMedian) {
    log << std::fixed << std::setprecision(3) << "  stages (median ms):";
    double total = -1;
    for (const auto& [stage, st] : stages.stats()) {
        log << " " << stage << " " << st.median;
        if (stage == "total") total = st.median;
    }
    if (total >= 0) log << "; outside the stages (validation, copies) " << wallMedian - total;
    log << "\n";
}

} // namespace

double residentMiB() {
    std::ifstream f("/proc/self/statm");
    double size = 0, resident = 0;
    if (!(f >> size >> resident)) return 0;
    return resident * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::vector<TimingStats> benchFrames(const std::string& path, const MergeParams& p, int repeats,
                                     std::ostream& log, nlohmann::ordered_json& meta) {
    const NdArray a = loadArray(path, {}, "tokens");
    if (a.ndim() != 3 || a.shape[0] < 1 || a.shape[1] < 1 || a.shape[2] < 1)
        throw InputError(path + ": frames must be [F, N, D] (from qmpp tokenize VIDEO), got " +
                         a.shapeString());
    if (a.dtype == DType::I32 || a.dtype == DType::I64)
        throw InputError(path + ": frames must be floating point, not " + dtypeName(a.dtype));
    const std::vector<float> all = a.toFloat();
    const i64 f = a.shape[0], n = a.shape[1], d = a.shape[2];
    std::vector<TokenSet> frames(static_cast<std::size_t>(f));
    for (i64 i = 0; i < f; ++i) {
        frames[i].n = n;
        frames[i].d = d;
        frames[i].x.assign(all.begin() + i * n * d, all.begin() + (i + 1) * n * d);
    }
    MergeSession session;
    MergeResult r = session.run(frames[0], p); // warm-up: device buffers, generators
    const bool verified = verifyAgainstCpu(frames[0], p, r, log);
    std::vector<double> ms;
    StageSamples stages;
    if (verified)
        for (int rep = 0; rep < repeats; ++rep)
            for (const TokenSet& t : frames) {
                const auto t0 = Clock::now();
                r = session.run(t, p);
                ms.push_back(msSince(t0));
                stages.add(r);
            }
    meta["frames_file"] = path;
    meta["frames"] = f;
    meta["device"] = r.device;
    if (!verified) return {frameRow("frame_pipeline", {0.0}, frames[0], r, p, false)};
    TimingStats s = frameRow("frame_pipeline", ms, frames[0], r, p, true);
    log << "frames " << path << ": " << f << " x " << repeats << " runs on " << r.device << "\n";
    logRow(log, s, "frames");
    printStages(log, stages, s.median);
    return {s};
}

std::vector<TimingStats> benchVideo(const std::string& path, const VideoOptions& o, i64 count,
                                    const MergeParams& p, std::ostream& log,
                                    nlohmann::ordered_json& meta) {
    if (count < 1) throw UsageError("--play must be at least 1 frame");
    VideoReader reader(path, o);
    MergeSession session;
    std::vector<double> frameMs, pipeMs;
    std::vector<std::pair<i64, double>> rss;
    TokenSet shape;
    MergeResult r;
    bool verified = false;
    i64 played = 0;
    const int window = windowOf(o);
    while (played < count) {
        if (reader.position() + window > reader.info().frames) reader.seek(0); // loop the clip
        bool progressed = false;
        const auto t0 = Clock::now();
        forEachUnit(reader, o, {reader.position(), reader.position() + window}, [&](VideoUnit& u) {
            const auto t1 = Clock::now();
            r = session.run(u.tokens, p);
            const double pipe = msSince(t1), whole = msSince(t0);
            if (played == 0) { // the first unit warms up and is verified, not timed
                shape = u.tokens;
                verified = verifyAgainstCpu(u.tokens, p, r, log);
                if (!verified) throw RuntimeFailure(path + ": the first frame failed verification");
            } else {
                pipeMs.push_back(pipe / double(u.frames));
                frameMs.push_back(whole / double(u.frames));
            }
            for (i64 k = 0; k < u.frames; ++k)
                if ((played + k) % 100 == 0) rss.emplace_back(played + k, residentMiB());
            played += u.frames;
            progressed = true;
            return false;
        });
        if (!progressed)
            throw InputError(path + ": no frame decodes at " + std::to_string(reader.position()));
    }
    rss.emplace_back(played, residentMiB());
    if (frameMs.empty()) { // a single unit: time it after all
        frameMs.push_back(0);
        pipeMs.push_back(0);
    }
    meta["video"] = path;
    meta["played_frames"] = played;
    meta["device"] = r.device;
    meta["rss_mib"] = nlohmann::ordered_json::array();
    for (const auto& [frame, mib] : rss)
        meta["rss_mib"].push_back({frame, mib});
    TimingStats whole = frameRow("video_frame", frameMs, shape, r, p, verified);
    TimingStats pipe = frameRow("frame_pipeline", pipeMs, shape, r, p, verified);
    log << "video " << path << ": " << played << " frames (" << shape.gridCols * o.patch << " x "
        << shape.gridRows * o.patch << ", looped) on " << r.device << "\n";
    logRow(log, whole, "frames");
    logRow(log, pipe, "frames");
    log << std::setprecision(1) << "  resident memory: " << rss.front().second << " MiB at frame "
        << rss.front().first << ", " << rss.back().second << " MiB at frame " << rss.back().first
        << "\n";
    return {whole, pipe};
}

} // namespace qmpp
