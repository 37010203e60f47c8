// Small kernels of the batched merge step (a model's hook): the weights m c, the counts of the
// merged groups, labels shifted past the kept-first tokens, and precision casts of merged rows.
#include "common.cuh"

namespace qmpp::kernels {

__global__ void step_weights_kernel(const float* mass, const float* counts, float* w, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) w[i] = counts ? mass[i] * counts[i] : mass[i];
}

// Counts are whole numbers well below 2^24, so the atomic float sums are exact in any order.
__global__ void step_group_counts_kernel(const int* labels, const float* counts, int n,
                                         float* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(out + labels[i], counts ? counts[i] : 1.0f);
}

__global__ void step_front_kernel(int* labels, float* countsOut, const float* countsIn, int p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p) return;
    labels[i] = i;
    countsOut[i] = countsIn ? countsIn[i] : 1.0f;
}

__global__ void step_shift_kernel(const int* in, int* out, int n, int shift) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] + shift;
}

void stepWeights(const float* mass, const float* counts, float* w, int n, cudaStream_t s) {
    step_weights_kernel<<<blocksFor(n, 256), 256, 0, s>>>(mass, counts, w, n);
    QMPP_CUDA_CHECK_LAUNCH();
}

void stepGroupCounts(const int* labels, const float* counts, int n, float* out, cudaStream_t s) {
    step_group_counts_kernel<<<blocksFor(n, 256), 256, 0, s>>>(labels, counts, n, out);
    QMPP_CUDA_CHECK_LAUNCH();
}

void stepFront(int* labels, float* countsOut, const float* countsIn, int p, cudaStream_t s) {
    if (p <= 0) return;
    step_front_kernel<<<blocksFor(p, 128), 128, 0, s>>>(labels, countsOut, countsIn, p);
    QMPP_CUDA_CHECK_LAUNCH();
}

void stepShiftLabels(const int* in, int* out, int n, int shift, cudaStream_t s) {
    step_shift_kernel<<<blocksFor(n, 256), 256, 0, s>>>(in, out, n, shift);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels
