// Device discovery and CUDA error handling shared by every kernel file.
// Plain C++ header: includable from code compiled without nvcc.
#pragma once

#include <stdexcept>
#include <string>

namespace qmpp::kernels {

// A CUDA runtime or cuRAND call failed; the message holds file, line and expression.
struct CudaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Number of usable CUDA devices; 0 with the reason in *why (no driver, no device...).
// Any runtime error counts as "no GPU": without a driver cudaGetDeviceCount fails (35).
int deviceCount(std::string* why = nullptr, int* code = nullptr); // code: the cudaError_t

struct DeviceInfo {
    std::string name;
    int major = 0, minor = 0, smCount = 0;
    std::size_t totalMemory = 0;
};
DeviceInfo deviceInfo(int device = 0);
// The current device's, read once per process (the kernels' launch choices).
const DeviceInfo& currentDeviceInfo();

} // namespace qmpp::kernels
