// vitgpu.h in a build without CUDA: no device, and a clear reason.
#include "qmpp/vitgpu.h"

#include <stdexcept>

namespace qmpp {

namespace {
constexpr const char* kWhy = "this build has no CUDA (configure with the CUDA toolkit installed)";
}

bool gpuForwardAvailable(std::string* why) {
    if (why) *why = kWhy;
    return false;
}

struct VitGpu::Impl {};

VitGpu::VitGpu(std::shared_ptr<const VitModel>, bool) {
    throw std::runtime_error(std::string("GPU forward: ") + kWhy);
}
VitGpu::~VitGpu() = default;
std::vector<ForwardResult> VitGpu::forward(const float*, i64, const HookParams&, i64,
                                           const ForwardOptions&) {
    return {};
}
const char* VitGpu::precision() const {
    return "fp32";
}
std::string VitGpu::device() const {
    return {};
}

} // namespace qmpp

namespace qmpp {
std::vector<GpuModelCheck> checkVitGpu(const std::shared_ptr<const VitModel>&, const float*, i64,
                                       std::ostream&) {
    throw std::runtime_error(std::string("GPU check: ") + kWhy);
}
} // namespace qmpp

namespace qmpp {
struct LmGpu::Impl {};
LmGpu::LmGpu(std::shared_ptr<const LmModel>, bool) {
    throw std::runtime_error(std::string("GPU forward: ") + kWhy);
}
LmGpu::~LmGpu() = default;
LmResult LmGpu::forward(const std::vector<i64>&, const PrefixMerge&, i64) {
    return {};
}
const char* LmGpu::precision() const {
    return "fp32";
}
std::string LmGpu::device() const {
    return {};
}
std::vector<GpuModelCheck> checkLmGpu(const std::shared_ptr<const LmModel>&,
                                      const std::vector<i64>&, std::ostream&) {
    throw std::runtime_error(std::string("GPU check: ") + kWhy);
}
} // namespace qmpp
