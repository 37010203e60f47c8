// The CUDA backend (built when nvcc is found): every stage on the GPU through qmpp_kernels.
#pragma once

#include "qmpp/batch.h"
#include "qmpp/engine.h"

namespace qmpp {

// `optimized`: each kernel's optimized version where one exists, basic otherwise.
std::unique_ptr<Backend> makeCudaBackend(bool optimized, Precision precision);
// The merge step on device memory (qmpp/batch.h), FP32 or FP16 tokens.
std::unique_ptr<BatchStages> makeCudaBatchStages(bool optimized);

} // namespace qmpp
