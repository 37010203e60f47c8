// Internal to kernels/: element loads for both precisions, launch shapes and dispatch helpers.
#pragma once

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"

#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

namespace qmpp::kernels {

__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, long long i) { return __half2float(p[i]); }

inline unsigned blocksFor(long long n, int threads) {
    return static_cast<unsigned>((n + threads - 1) / threads);
}

[[noreturn]] inline void unavailable(Kernel k, Version v) {
    throw CudaError(std::string(kernelName(k)) + ": no " + versionName(v) + " version");
}

// Calls f(T{}) with T = float or __half per precision: runtime choice -> template parameter.
template <class F> void withPrec(Prec p, F&& f) {
    if (p == Prec::F16) f(__half{});
    else f(float{});
}

} // namespace qmpp::kernels
