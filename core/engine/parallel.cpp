// useThreadsFor (parallel.h): the team size from the work and the cores others leave idle.
#include "parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

namespace qmpp::par {

namespace {

// Below this many multiply-adds a region is faster on one thread (measured: N = 196, D = 768 is
// 4.0 ms on one thread and 5.3 ms on two of this 2-core machine, idle).
constexpr double kParallelWork = 1e8;

struct CpuSample {
    double total = 0, busy = 0, self = 0; // clock ticks: all cores, busy, this process
    bool ok = false;
};

CpuSample sample() {
    CpuSample s;
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double v[8] = {};
    if (!(stat >> cpu) || cpu != "cpu") return s;
    for (double& x : v)
        stat >> x; // user nice system idle iowait irq softirq steal
    for (double x : v)
        s.total += x;
    s.busy = s.total - v[3] - v[4];
    std::ifstream self("/proc/self/stat");
    std::string line;
    std::getline(self, line);
    const auto close = line.rfind(')'); // the name may hold spaces
    if (close == std::string::npos) return s;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 15 && rest >> field; ++i)
        if (i == 14 || i == 15) s.self += std::stod(field); // utime, stime
    s.ok = true;
    return s;
}

} // namespace

int useThreadsFor(double work) {
#ifdef _OPENMP
    static std::mutex mutex;
    static CpuSample last;
    static auto lastTime = std::chrono::steady_clock::time_point{};
    static int decided = 0;
    // at most what the user allows (OMP_NUM_THREADS), read once before the first change
    static const int cap = std::max(1, std::min(omp_get_num_procs(), omp_get_max_threads()));
    const int cores = cap;
    int threads = 1;
    if (work >= kParallelWork && cores > 1) {
        std::lock_guard<std::mutex> lock(mutex);
        const auto now = std::chrono::steady_clock::now();
        if (decided == 0 || now - lastTime >= std::chrono::milliseconds(100)) {
            const CpuSample s = sample();
            if (s.ok && last.ok && s.total > last.total) {
                // others' busy cores over the interval: their ticks over ticks per core
                const double perCore = (s.total - last.total) / cores;
                const double others =
                    std::max(0.0, (s.busy - last.busy) - (s.self - last.self)) / perCore;
                decided = std::clamp(int(std::floor(cores - others + 0.5)), 1, cores);
            } else if (decided == 0) {
                decided = cores; // no history yet
            }
            if (s.ok) last = s, lastTime = now;
        }
        threads = decided;
    }
    omp_set_num_threads(threads);
    return threads;
#else
    (void)work;
    return 1;
#endif
}

} // namespace qmpp::par
