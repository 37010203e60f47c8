// The transformer's own kernels for the model in the loop (core/model's GPU forward): the
// products go through cuBLAS there; these do the rest. Storage "T" is float or half per Prec
// (ops.h), with FP32 arithmetic inside every kernel. Rows are row-major; `batch` items of `t`
// tokens each lie one after another. Every launcher checks its launch and throws CudaError.
#pragma once

#include "qmpp/kernels/ops.h"

#include <cuda_runtime.h>

namespace qmpp::kernels::vit {

// pixels [B, C, S, S] float -> cols [B * grid^2, C * P * P] in T, (c, py, px) order as a
// convolution weight [D, C, P, P] reads them.
void im2col(Prec p, const float* pixels, int batch, int channels, int size, int patch, void* cols,
            cudaStream_t s);

// x [B, 1 + N, D] in T: row 0 = cls + pos[0], row 1 + i = emb[b * N + i] + bias + pos[1 + i]
// (emb in T; cls, bias, pos float).
void embed(Prec p, const void* emb, const float* bias, const float* cls, const float* pos,
           int batch, int n, int d, void* x, cudaStream_t s);

// out[r] = LayerNorm(in[r]) * w + b for `rows` rows of `d`, reading row r at in + r * inStride
// and writing it at out + r * d. Two passes over the row in FP32 (mean, then variance).
void layerNorm(Prec p, const void* in, long long inStride, int rows, int d, const float* w,
               const float* b, float eps, void* out, cudaStream_t s);

// y [rows, n] += bias; with gelu, y = GELU(y + bias), the exact (erf) GELU.
void biasAct(Prec p, void* y, int rows, int n, const float* bias, bool gelu, cudaStream_t s);
// x [rows, n] += y + bias (the residual).
void biasResidual(Prec p, void* x, const void* y, int rows, int n, const float* bias,
                  cudaStream_t s);

// qkv [B, T, 3, H, dh] -> q, k, v, each [B, H, T, dh].
void splitHeads(Prec p, const void* qkv, int batch, int t, int heads, int dh, void* q, void* k,
                void* v, cudaStream_t s);
// o [B, H, T, dh] -> out [B, T, H * dh].
void mergeHeads(Prec p, const void* o, int batch, int t, int heads, int dh, void* out,
                cudaStream_t s);

// One softmax row per (b, h, i) of the scores [B, H, T, T] (float, scale already applied):
// adds ln counts[b, j] to key j when counts is given (proportional attention); with positions
// [B, T], key j takes part only when positions[b, j] <= positions[b, i] (the causal rule of
// merged sequences; the others get probability 0). Writes the probabilities to probs
// [B, H, T, T] in T, the row's entropy (nats) to entropy [B, H, T] when given, and the class
// token's row (i = 0) to clsRow [B, H, T] when given.
void softmaxRows(Prec p, const float* scores, int batch, int heads, int t, const float* counts,
                 const int* positions, void* probs, float* entropy, float* clsRow, cudaStream_t s);

// x [n, D] in T = table[ids[i]] (T) + pos[i] (float): a language model's input.
void embedTokens(Prec p, const int* ids, int n, const void* table, const float* pos, int d, void* x,
                 cudaStream_t s);

// ToMe's metric: the keys averaged over heads, k [B, H, T, dh] -> out [B, T, dh] float.
void keysMean(Prec p, const void* k, int batch, int heads, int t, int dh, float* out,
              cudaStream_t s);

// The merge hook's application: output row g of item b is the weighted mean of the rows
// members[offsets[b * tOut + g] .. offsets[b * tOut + g + 1]) of x (each an index into that
// item's tIn rows) with weights weight[] of the same entries; when they sum to 0, the plain
// mean. x [B, tIn, D] -> out [B, tOut, D].
void mergeRows(Prec p, const void* x, int batch, int tIn, int tOut, int d, const int* offsets,
               const int* members, const float* weight, void* out, cudaStream_t s);

// float -> T and T -> float copies of n elements.
void toPrec(Prec p, const float* in, long long n, void* out, cudaStream_t s);
void toFloat(Prec p, const void* in, long long n, float* out, cudaStream_t s);

} // namespace qmpp::kernels::vit
