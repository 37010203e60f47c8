// gpu::Context (gpucontext.h): cuBLAS on a stream, uploads, products and attention.
#include "gpucontext.h"

#include <cmath>
#include <stdexcept>

namespace qmpp::gpu {

namespace kv = kernels::vit;

Context::Context(bool fp16) {
    std::string why;
    if (kernels::deviceCount(&why) <= 0)
        throw std::runtime_error("GPU forward: no CUDA device (" + why + ")");
    prec = fp16 ? Prec::F16 : Prec::F32;
    elem = fp16 ? 2 : 4;
    dtype = fp16 ? CUDA_R_16F : CUDA_R_32F;
    deviceName = kernels::currentDeviceInfo().name;
    QMPP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    QMPP_CUBLAS_CHECK(kernels::cublas().create(&blas));
    QMPP_CUBLAS_CHECK(kernels::cublas().setStream(blas, stream));
    // FP32 means FP32: no TF32 in the products (SPEC: GPU FP32 equals the CPU within 1e-4)
    QMPP_CUBLAS_CHECK(kernels::cublas().setMathMode(blas, CUBLAS_DEFAULT_MATH));
    for (Tensor* t : {&qkv, &q, &k, &v, &probs, &o})
        t->elem = elem;
}

Context::~Context() {
    if (blas) kernels::cublas().destroy(blas);
    if (stream) QMPP_CUDA_CHECK_PRINT(cudaStreamDestroy(stream));
}

Tensor Context::tensor() const {
    Tensor t;
    t.elem = elem;
    return t;
}

void Context::upload(Tensor& dst, const std::vector<float>& host) {
    DeviceBuffer<float> tmp;
    tmp.upload(host.data(), host.size(), stream);
    dst.elem = elem;
    dst.resize(host.size());
    kv::toPrec(prec, tmp.get(), static_cast<long long>(host.size()), dst.get(), stream);
    sync(); // tmp goes now
}

void Context::upload(DevLinear& dst, const Linear& src) {
    dst.in = static_cast<int>(src.in);
    dst.out = static_cast<int>(src.out);
    upload(dst.w, unpackRows(src.w));
    dst.b.upload(src.b.data(), src.b.size(), stream);
}

void Context::upload(DevNorm& dst, const Norm& src) {
    dst.w.upload(src.w.data(), src.w.size(), stream);
    dst.b.upload(src.b.data(), src.b.size(), stream);
    dst.eps = static_cast<float>(src.eps);
}

void Context::upload(DevBlock& dst, const Norm& norm1, const Norm& norm2, const Linear& qkv,
                     const Linear& proj, const Linear& fc1, const Linear& fc2) {
    upload(dst.norm1, norm1);
    upload(dst.norm2, norm2);
    upload(dst.qkv, qkv);
    upload(dst.proj, proj);
    upload(dst.fc1, fc1);
    upload(dst.fc2, fc2);
}

void appendMembers(const MergePlan& plan, std::vector<int>& offsets, std::vector<int>& members,
                   std::vector<float>& weights) {
    std::vector<int> start(static_cast<std::size_t>(plan.tOut) + 1, 0);
    for (i64 i = 0; i < plan.tIn; ++i)
        if (plan.newRow[i] >= 0) ++start[plan.newRow[i] + 1];
    for (i64 g = 0; g < plan.tOut; ++g)
        start[g + 1] += start[g];
    const int base = int(members.size());
    for (i64 g = 0; g < plan.tOut; ++g)
        offsets.push_back(base + start[g]);
    members.resize(members.size() + std::size_t(start[plan.tOut]));
    weights.resize(members.size());
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (i64 i = 0; i < plan.tIn; ++i)
        if (plan.newRow[i] >= 0) {
            const int at = base + fill[plan.newRow[i]]++;
            members[at] = int(i);
            weights[at] = plan.weight[i];
        }
}

void Context::gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int kk, float alpha,
                   const void* a, cudaDataType_t at, int lda, long long sa, const void* b,
                   cudaDataType_t bt, int ldb, long long sb, void* c, cudaDataType_t ct, int ldc,
                   long long sc, int batch) {
    const float beta = 0.0f;
    QMPP_CUBLAS_CHECK(kernels::cublas().gemmBatched(blas, ta, tb, m, n, kk, &alpha, a, at, lda, sa,
                                                    b, bt, ldb, sb, &beta, c, ct, ldc, sc, batch,
                                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void Context::linear(const DevLinear& l, const Tensor& in, int rows, Tensor& out) {
    out.elem = elem;
    out.resize(static_cast<std::size_t>(rows) * l.out);
    // row-major Y = X W^T is column-major Y^T = W X^T
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, l.out, rows, l.in, 1.0f, l.w.get(), dtype, l.in, 0, in.get(),
         dtype, l.in, 0, out.get(), dtype, l.out, 0, 1);
}

void Context::attention(int batch, int t, int d, int nh, const float* counts, const int* positions,
                        float* entropy, float* clsRow, Tensor& out) {
    const int dh = d / nh;
    const std::size_t headElems = std::size_t(batch) * nh * t * dh;
    const std::size_t scoreElems = std::size_t(batch) * nh * t * t;
    q.resize(headElems);
    k.resize(headElems);
    v.resize(headElems);
    kv::splitHeads(prec, qkv.get(), batch, t, nh, dh, q.get(), k.get(), v.get(), stream);
    // scores [B*H, t, t] = scale q k^T: row-major S = Q K^T is column-major S^T = K Q^T
    scores.resize(scoreElems);
    const long long sHead = (long long)t * dh, sScore = (long long)t * t;
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, t, t, dh, 1.0f / std::sqrt(float(dh)), k.get(), dtype, dh, sHead,
         q.get(), dtype, dh, sHead, scores.get(), CUDA_R_32F, t, sScore, batch * nh);
    probs.resize(scoreElems);
    kv::softmaxRows(prec, scores.get(), batch, nh, t, counts, positions, probs.get(), entropy,
                    clsRow, stream);
    // o [B*H, t, dh] = P V: column-major O^T = V^T P^T
    o.resize(headElems);
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, dh, t, t, 1.0f, v.get(), dtype, dh, sHead, probs.get(), dtype, t,
         sScore, o.get(), dtype, dh, sHead, batch * nh);
    out.elem = elem;
    out.resize(std::size_t(batch) * t * d);
    kv::mergeHeads(prec, o.get(), batch, t, nh, dh, out.get(), stream);
}

void Context::sync() {
    QMPP_CUDA_CHECK(cudaStreamSynchronize(stream));
}

} // namespace qmpp::gpu
