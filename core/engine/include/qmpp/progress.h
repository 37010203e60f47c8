// Long jobs (video export, sweeps, evaluations) report progress and may be cancelled.
#pragma once

#include "qmpp/types.h"

#include <functional>
#include <stdexcept>

namespace qmpp {

// Progress of a long job: (done, total); returning false cancels it.
using Progress = std::function<bool(i64 done, i64 total)>;
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

} // namespace qmpp
