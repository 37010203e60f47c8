// cublas() (qmpp/kernels/cublas.h): cuBLAS through dlopen, once per process.
#include "qmpp/kernels/cublas.h"

#include "qmpp/kernels/common.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <type_traits>

namespace qmpp::kernels {

const CublasApi& cublas() {
    static CublasApi api;
    static std::string failure;
    static std::once_flag once;
    std::call_once(once, [] {
        const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
        void* lib = nullptr;
        for (const std::string& path : {name, std::string(QMPP_CUDA_LIBDIR) + "/" + name})
            if ((lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
        if (!lib) {
            failure = "cannot load " + name + ": " + dlerror();
            return;
        }
        auto sym = [&](auto& fn, const char* n) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, n));
            if (!fn && failure.empty()) failure = name + " lacks " + n;
        };
        sym(api.create, "cublasCreate_v2");
        sym(api.destroy, "cublasDestroy_v2");
        sym(api.setStream, "cublasSetStream_v2");
        sym(api.setMathMode, "cublasSetMathMode");
        sym(api.statusString, "cublasGetStatusString");
        sym(api.gemm, "cublasGemmEx");
        sym(api.gemmBatched, "cublasGemmStridedBatchedEx");
    });
    if (!failure.empty()) throw CudaError(failure);
    return api;
}

void cublasCheck(cublasStatus_t st, const char* expr, const char* file, int line) {
    if (st == CUBLAS_STATUS_SUCCESS) return;
    const char* why = cublas().statusString ? cublas().statusString(st) : "";
    throw CudaError(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed (" +
                    std::to_string(int(st)) + " " + why + ")");
}

} // namespace qmpp::kernels
