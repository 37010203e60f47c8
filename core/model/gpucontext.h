// What the GPU forwards share (internal to core/model, CUDA builds only): a cuBLAS handle on a
// stream, weights uploaded in the forward's precision, and the products spelled for row-major
// data.
#pragma once

#include "qmpp/hook.h"
#include "vitmodel.h"

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/cublas.h"
#include "qmpp/kernels/vit.h"

#include <string>
#include <vector>

namespace qmpp::gpu {

using kernels::DeviceBuffer;
using kernels::Prec;

// Device storage of `count` elements in the forward's precision.
struct Tensor {
    DeviceBuffer<char> buf;
    std::size_t elem = 4;
    void resize(std::size_t count) { buf.resize(count * elem); }
    void* get() const { return buf.get(); }
};

struct DevLinear {
    int in = 0, out = 0;
    Tensor w;
    DeviceBuffer<float> b;
};
struct DevNorm {
    DeviceBuffer<float> w, b;
    float eps = 1e-6f;
};

// A pre-LayerNorm transformer block's weights on the device (the ViT's and the language
// model's have the same parts).
struct DevBlock {
    DevNorm norm1, norm2;
    DevLinear qkv, proj, fc1, fc2;
};

// A merge plan as the kernels read it: for each output row, its members (in token order) and
// their weights. Appends one item's rows: offsets (absolute, into members) for plan.tOut rows;
// the caller closes the list with members.size().
void appendMembers(const MergePlan& plan, std::vector<int>& offsets, std::vector<int>& members,
                   std::vector<float>& weights);

class Context {
  public:
    explicit Context(bool fp16); // throws when there is no device
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    Prec prec = Prec::F32;
    std::size_t elem = 4;
    cudaDataType_t dtype = CUDA_R_32F;
    cublasHandle_t blas = nullptr;
    cudaStream_t stream = nullptr;
    std::string deviceName;

    const char* precision() const { return prec == Prec::F16 ? "fp16" : "fp32"; }
    Tensor tensor() const;
    void upload(Tensor& dst, const std::vector<float>& host);
    void upload(DevLinear& dst, const Linear& src);
    void upload(DevNorm& dst, const Norm& src);
    void upload(DevBlock& dst, const Norm& norm1, const Norm& norm2, const Linear& qkv,
                const Linear& proj, const Linear& fc1, const Linear& fc2);
    // C = alpha op(A) op(B), column-major, strided-batched, FP32 accumulation (no TF32).
    void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
              const void* a, cudaDataType_t at, int lda, long long sa, const void* b,
              cudaDataType_t bt, int ldb, long long sb, void* c, cudaDataType_t ct, int ldc,
              long long sc, int batch);
    // y [rows, out] = x [rows, in] W^T (the bias comes in the following kernel)
    void linear(const DevLinear& l, const Tensor& in, int rows, Tensor& out);
    // Multi-head attention on qkv [batch * t, 3D] (biases added): scores through cuBLAS,
    // softmax with ln counts (null: none) and, with positions [batch, t] (null: none), the
    // causal rule by position; entropy [batch, H, t] and the class row when given; out
    // [batch * t, D] before the projection. q, k, v [batch, H, t, dh] stay for the hook.
    void attention(int batch, int t, int d, int heads, const float* counts, const int* positions,
                   float* entropy, float* clsRow, Tensor& out);
    void sync();

    Tensor qkv, q, k, v, probs, o;
    DeviceBuffer<float> scores;
};

} // namespace qmpp::gpu
