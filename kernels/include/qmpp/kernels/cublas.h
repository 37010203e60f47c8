// cuBLAS, loaded with dlopen the first time a caller needs it (the model's GPU forward, the
// benchmarks' references): linking it would add a third of a second and about 250 MiB of
// resident memory to every start of qmpp, its libraries being over half a gigabyte.
// Plain C++ header: only cuBLAS's declarations are used, nothing is linked.
#pragma once

#include <cublas_v2.h>

namespace qmpp::kernels {

struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasDestroy_v2) destroy = nullptr;
    decltype(&cublasSetStream_v2) setStream = nullptr;
    decltype(&cublasSetMathMode) setMathMode = nullptr;
    decltype(&cublasGetStatusString) statusString = nullptr;
    // the C entry points (C++ sees overloads of these names)
    cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                           const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                           int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                           cublasGemmAlgo_t) = nullptr;
    cublasStatus_t (*gemmBatched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                  int, const void*, const void*, cudaDataType, int, long long,
                                  const void*, cudaDataType, int, long long, const void*, void*,
                                  cudaDataType, int, long long, int, cublasComputeType_t,
                                  cublasGemmAlgo_t) = nullptr;
};

// The process's cuBLAS (loaded once, kept); CudaError naming the library when it cannot be
// loaded or lacks an entry point.
const CublasApi& cublas();
// Throws CudaError naming `expr` and cuBLAS's reason unless st is CUBLAS_STATUS_SUCCESS.
void cublasCheck(cublasStatus_t st, const char* expr, const char* file, int line);

} // namespace qmpp::kernels

#define QMPP_CUBLAS_CHECK(expr) ::qmpp::kernels::cublasCheck((expr), #expr, __FILE__, __LINE__)
