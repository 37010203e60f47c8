// The CUDA backend (built when nvcc is found): every stage on the GPU through qmpp_kernels.
#pragma once

#include "qmpp/engine.h"

namespace qmpp {

// `optimized`: each kernel's optimized version where one exists, basic otherwise.
std::unique_ptr<Backend> makeCudaBackend(bool optimized, Precision precision);

// The note a run carries when its device stages ran as a CUDA graph (repeated runs of one
// optimized backend with the same shapes; QMPP_CUDA_GRAPHS=0 turns graphs off).
inline constexpr const char* kGraphNote = "device stages replayed as a CUDA graph";

} // namespace qmpp
