// Internal to kernels/: element loads for both precisions, launch shapes and dispatch helpers.
#pragma once

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"

#include <cub/block/block_reduce.cuh>
#include <cuda_fp16.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace qmpp::kernels {

__device__ __forceinline__ float ld(const float* p, long long i) {
    return p[i];
}
__device__ __forceinline__ float ld(const __half* p, long long i) {
    return __half2float(p[i]);
}
template <class T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ __half fromFloat<__half>(float v) {
    return __float2half_rn(v);
}

// ---- programmatic dependent launch (Hopper and later) ---------------------------------------
// A kernel launched with launchDependent may start while the kernel before it in the stream is
// still running (after that one calls allowDependents(), or as it ends); it must call
// waitPrimary() before it reads anything that kernel writes. Elsewhere these are plain launches.
__device__ __forceinline__ void waitPrimary() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void allowDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
bool dependentLaunches(); // the current device overlaps dependent launches (compute capability >=
                          // 9)

template <class... Params, class... Args>
void launchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem,
                     cudaStream_t s, Args&&... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr[1] = {};
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = dependentLaunches() ? 1 : 0;
    QMPP_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

inline unsigned blocksFor(long long n, int threads) {
    return static_cast<unsigned>((n + threads - 1) / threads);
}

[[noreturn]] inline void unavailable(Kernel k, Version v) {
    throw CudaError(std::string(kernelName(k)) + ": no " + versionName(v) + " version");
}

// Calls f(T{}) with T = float or __half per precision: runtime choice -> template parameter.
template <class F> void withPrec(Prec p, F&& f) {
    if (p == Prec::F16)
        f(__half{});
    else
        f(float{});
}

// The sum over the 32 lanes of a warp, in every lane.
__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// op over a block of kThreads (cub::BlockReduce), the result in every thread. Called by all
// threads; safe to call again right after.
template <int kThreads, class T, class Op> __device__ T blockAllReduce(T v, Op op) {
    using Reduce = cub::BlockReduce<T, kThreads>;
    __shared__ typename Reduce::TempStorage tmp;
    __shared__ T result;
    const T r = Reduce(tmp).Reduce(v, op);
    if (threadIdx.x == 0) result = r;
    __syncthreads();
    const T all = result;
    __syncthreads(); // tmp and result are free for the next call
    return all;
}

// One block of kThreads walks tokens [start, n) in chunks and calls visit(j) for every token j
// with labels[j] == g, in ascending token order; every thread sees every member (ballots and
// warp offsets, no atomics). Called by all threads of the block.
template <int kThreads, class F>
__device__ void forGroupMembers(const int* labels, int n, int g, int start, F&& visit) {
    __shared__ int members[kThreads];
    __shared__ int warpCount[kThreads / 32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int base = start; base < n; base += kThreads) {
        const int i = base + tid;
        const bool in = i < n && labels[i] == g;
        const unsigned ballot = __ballot_sync(0xffffffffu, in);
        if (lane == 0) warpCount[warp] = __popc(ballot);
        __syncthreads();
        int off = 0, total = 0;
        for (int w = 0; w < kThreads / 32; ++w) {
            off += w < warp ? warpCount[w] : 0;
            total += warpCount[w];
        }
        if (in) members[off + __popc(ballot & ((1u << lane) - 1u))] = i;
        __syncthreads();
        for (int m = 0; m < total; ++m)
            visit(members[m]);
        __syncthreads();
    }
}

} // namespace qmpp::kernels
