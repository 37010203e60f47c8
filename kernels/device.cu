// Device discovery. Kernels of each operation live in their own file beside this one.
#include "qmpp/kernels/device.h"

#include <cuda_runtime.h>

namespace qmpp::kernels {

int deviceCount(std::string* why) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why) *why = std::string(cudaGetErrorString(err)) + " (cudaGetDeviceCount = " +
                        std::to_string(static_cast<int>(err)) + ")";
        cudaGetLastError(); // clear the sticky-free error so later calls start clean
        return 0;
    }
    if (n == 0 && why) *why = "the driver reports no CUDA device";
    return n;
}

DeviceInfo deviceInfo(int device) {
    cudaDeviceProp p{};
    const cudaError_t err = cudaGetDeviceProperties(&p, device);
    if (err != cudaSuccess)
        throw CudaError(std::string(__FILE__) + ":" + std::to_string(__LINE__) +
                        ": cudaGetDeviceProperties: " + cudaGetErrorString(err));
    DeviceInfo info;
    info.name = p.name;
    info.major = p.major;
    info.minor = p.minor;
    info.smCount = p.multiProcessorCount;
    info.totalMemory = p.totalGlobalMem;
    return info;
}

} // namespace qmpp::kernels
