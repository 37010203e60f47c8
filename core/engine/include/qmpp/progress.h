// Long jobs (video export, sweeps, evaluations) report progress and may be cancelled.
#pragma once

#include "qmpp/types.h"

#include <atomic>
#include <functional>
#include <stdexcept>

namespace qmpp {

// Progress of a long job: (done, total); returning false cancels it.
using Progress = std::function<bool(i64 done, i64 total)>;
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

// A cooperative stop for the engine's long loops. While a StopScope is alive on a thread, the
// loops it runs (the entropies' row blocks, clustering) watch *flag (non-zero: stop) between
// blocks and end early, and the engine throws Cancelled at the next stage: superseded work
// stops within a block of rows, not after a stage of minutes.
class StopScope {
  public:
    explicit StopScope(const std::atomic<int>* flag);
    ~StopScope();
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

  private:
    const std::atomic<int>* m_previous;
};
// This thread's flag (null: none); loops read it once, before their parallel region.
const std::atomic<int>* stopFlag();
inline bool stopRequested(const std::atomic<int>* flag) {
    return flag && flag->load(std::memory_order_relaxed) != 0;
}
// Cancelled when this thread's flag is set.
void throwIfStopped();

} // namespace qmpp
