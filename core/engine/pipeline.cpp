// The engine's front door: names of the options, validation at the API boundary, and backend
// selection. The pipeline itself reads top to bottom in engine.cpp.
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>

#ifdef QMPP_HAVE_CUDA
#include "qmpp/cuda_backend.h"
#include "qmpp/kernels/common.h"
#include "qmpp/kernels/device.h"
#endif

namespace qmpp {

namespace {

// Whether v[begin, end) holds only values within +-kMaxValueMagnitude (NaN and Inf are not):
// a branch-free scan that vectorizes.
bool blockInRange(const float* v, std::size_t begin, std::size_t end) {
    constexpr float lim = float(kMaxValueMagnitude);
    std::uint32_t bad = 0;
    for (std::size_t i = begin; i < end; ++i)
        bad |= static_cast<std::uint32_t>(!(std::fabs(v[i]) <= lim));
    return bad == 0;
}

void requireFinite(const std::vector<float>& v, const std::string& what, i64 rowLen) {
    // Blocks are scanned in parallel; only a block with a bad value is searched for its index,
    // so validating a 1920x1088 frame's tokens costs a fraction of a millisecond.
    constexpr std::size_t kBlock = 1 << 14;
    const std::size_t blocks = (v.size() + kBlock - 1) / kBlock;
    std::size_t firstBad = v.size();
#pragma omp parallel for schedule(static) reduction(min : firstBad) if (blocks > 16)
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t lo = b * kBlock, hi = std::min(v.size(), lo + kBlock);
        if (!blockInRange(v.data(), lo, hi)) firstBad = std::min(firstBad, lo);
    }
    for (std::size_t i = firstBad; i < v.size(); ++i)
        if (!(std::fabs(v[i]) <= float(kMaxValueMagnitude))) {
            std::ostringstream os;
            if (std::isfinite(v[i]))
                os << what << " hold " << v[i] << ", outside +-" << kMaxValueMagnitude
                   << " (the range whose products stay finite in float32), at flat index " << i;
            else
                os << what << " holds a non-finite value (" << v[i] << ") at flat index " << i;
            if (rowLen > 0) os << " (row " << i / rowLen << ", column " << i % rowLen << ")";
            throw InputError(os.str());
        }
}

} // namespace

// --- names ------------------------------------------------------------------------------

const char* toString(Method m) {
    switch (m) {
    case Method::QuickMerge:
        return "quickmerge";
    case Method::ToMe:
        return "tome";
    case Method::TopK:
        return "topk";
    case Method::Random:
        return "random";
    }
    return "?";
}
const char* toString(ClusterMethod m) {
    switch (m) {
    case ClusterMethod::Seeded:
        return "seeded";
    case ClusterMethod::Agglomerative:
        return "agglomerative";
    case ClusterMethod::Reference:
        return "reference";
    }
    return "?";
}
const char* toString(BackendKind b) {
    switch (b) {
    case BackendKind::Auto:
        return "auto";
    case BackendKind::Cpu:
        return "cpu";
    case BackendKind::CudaBasic:
        return "cuda-basic";
    case BackendKind::Cuda:
        return "cuda";
    }
    return "?";
}
const char* toString(Precision p) {
    return p == Precision::FP16 ? "fp16" : "fp32";
}

template <class E>
static bool parseEnum(const std::string& s, E& out, std::initializer_list<E> all) {
    for (E e : all)
        if (s == toString(e)) {
            out = e;
            return true;
        }
    return false;
}
bool parse(const std::string& s, Method& out) {
    return parseEnum(s, out, {Method::QuickMerge, Method::ToMe, Method::TopK, Method::Random});
}
bool parse(const std::string& s, ClusterMethod& out) {
    return parseEnum(
        s, out, {ClusterMethod::Seeded, ClusterMethod::Agglomerative, ClusterMethod::Reference});
}
bool parse(const std::string& s, BackendKind& out) {
    return parseEnum(
        s, out, {BackendKind::Auto, BackendKind::Cpu, BackendKind::CudaBasic, BackendKind::Cuda});
}
bool parse(const std::string& s, Precision& out) {
    return parseEnum(s, out, {Precision::FP32, Precision::FP16});
}

// --- validation ---------------------------------------------------------------------------

i64 resolveK(i64 n, const MergeParams& p) {
    if (p.k != 0) return p.k;
    return std::max<i64>(1, static_cast<i64>(std::floor(p.budget * double(n))));
}

void validate(const TokenSet& t, const MergeParams& p) {
    if (t.n < 1) throw InputError("the token set is empty (N = 0)");
    if (t.d < 1) throw InputError("tokens have no features (D = 0)");
    if (t.d > kMaxTokenDim)
        throw InputError("tokens of D = " + std::to_string(t.d) + " features exceed the limit of " +
                         std::to_string(kMaxTokenDim) +
                         " (the AR heads hold 4 x 256 x D weights); project them to fewer "
                         "features, or use a smaller patch");
    if (static_cast<i64>(t.x.size()) != t.n * t.d)
        throw InputError("token buffer holds " + std::to_string(t.x.size()) +
                         " values, not N*D = " + std::to_string(t.n * t.d));
    if (p.k == 0 && !(p.budget > 0 && p.budget <= 1))
        throw UsageError("budget must lie in (0, 1], got " + std::to_string(p.budget));
    const i64 k = resolveK(t.n, p);
    if (k < 1) throw UsageError("K must be at least 1, got " + std::to_string(k));
    if (k > t.n)
        throw UsageError("K = " + std::to_string(k) +
                         " exceeds the number of tokens N = " + std::to_string(t.n));
    if (!(p.temperature >= kMinTemperature) || !std::isfinite(p.temperature)) {
        std::ostringstream os;
        os << "temperature must be at least " << kMinTemperature << " (finite), got "
           << p.temperature;
        throw UsageError(os.str());
    }
    if (!(p.epsilon >= 0 && p.epsilon <= 1)) {
        std::ostringstream os;
        os << "epsilon (the background weight in the mass) must lie in [0, 1], got " << p.epsilon;
        throw UsageError(os.str());
    }
    if (!(p.gamma >= 0 && p.gamma <= 1))
        throw UsageError("gamma must lie in [0, 1], got " + std::to_string(p.gamma));
    if (!(p.alpha >= 0) || !std::isfinite(p.alpha))
        throw UsageError("alpha must be >= 0, got " + std::to_string(p.alpha));
    if (p.layers < 1 || p.layers > 64)
        throw UsageError("layers must lie in 1..64, got " + std::to_string(p.layers));
    if (p.refine < 0 || p.refine > 100)
        throw UsageError("refinements must lie in 0..100, got " + std::to_string(p.refine));
    if (p.method == Method::QuickMerge && p.cluster != ClusterMethod::Seeded)
        checkExactSize(t.n, toString(p.cluster)); // before the O(N^2) saliency starts
    if (p.precision == Precision::FP16 && p.backend == BackendKind::Cpu)
        throw UsageError("fp16 needs a CUDA backend; the CPU backend computes in fp32/fp64");
    requireFinite(t.x, "tokens", t.d);
    if (!p.uniforms.empty()) {
        if (static_cast<i64>(p.uniforms.size()) != t.n)
            throw InputError("the supplied uniforms hold " + std::to_string(p.uniforms.size()) +
                             " values, but there are N = " + std::to_string(t.n) + " tokens");
        requireFinite(p.uniforms, "the supplied uniforms", 0);
        for (std::size_t i = 0; i < p.uniforms.size(); ++i)
            if (p.uniforms[i] < 0 || p.uniforms[i] > 1)
                throw InputError("the supplied uniforms must lie in [0, 1]; index " +
                                 std::to_string(i) + " holds " + std::to_string(p.uniforms[i]));
    }
    if (!t.hidden.empty()) {
        if (t.hiddenLayers < 1 || static_cast<i64>(t.hidden.size()) != t.hiddenLayers * t.n * t.d)
            throw InputError("hidden states must be [L, N, D] = [L, " + std::to_string(t.n) + ", " +
                             std::to_string(t.d) + "] to match the tokens");
        requireFinite(t.hidden, "hidden states", t.d);
    }
    if (!t.attention.empty()) {
        if (t.attnLayers < 1 || t.attnHeads < 1 ||
            static_cast<i64>(t.attention.size()) != t.attnLayers * t.attnHeads * t.n * t.n)
            throw InputError("attention maps must be [L, N, N] or [L, H, N, N] with N = " +
                             std::to_string(t.n));
        requireFinite(t.attention, "attention maps", t.n);
        const i64 rows = t.attnLayers * t.attnHeads * t.n;
        for (i64 r = 0; r < rows; ++r) {
            double sum = 0;
            for (i64 j = 0; j < t.n; ++j) {
                const float v = t.attention[r * t.n + j];
                if (v < 0)
                    throw InputError("attention maps hold a negative entry (" + std::to_string(v) +
                                     ") in row " + std::to_string(r % t.n) + " of map " +
                                     std::to_string(r / t.n));
                sum += v;
            }
            if (sum <= 0)
                throw InputError("attention maps hold an all-zero row: row " +
                                 std::to_string(r % t.n) + " of map " + std::to_string(r / t.n));
        }
    }
    if (t.gridRows * t.gridCols != 0 && i64(t.gridFrames) * t.gridRows * t.gridCols != t.n)
        throw InputError("token grid " + std::to_string(t.gridFrames) + "x" +
                         std::to_string(t.gridRows) + "x" + std::to_string(t.gridCols) +
                         " does not hold N tokens");
    if (!t.labels.empty() && static_cast<i64>(t.labels.size()) != t.n)
        throw InputError("the labels file has " + std::to_string(t.labels.size()) +
                         " lines, but there are N = " + std::to_string(t.n) + " tokens");
    if (p.arHeads && p.arHeads->d != t.d)
        throw InputError("the AR heads are for D = " + std::to_string(p.arHeads->d) +
                         ", the tokens have D = " + std::to_string(t.d));
}

// --- backends -----------------------------------------------------------------------------

namespace {
std::mutex g_providerMutex;
std::shared_ptr<const DeviceProvider> g_provider;
std::shared_ptr<const DeviceProvider> provider() {
    std::lock_guard<std::mutex> lock(g_providerMutex);
    return g_provider;
}
} // namespace

void setDeviceProvider(std::shared_ptr<const DeviceProvider> p) {
    std::lock_guard<std::mutex> lock(g_providerMutex);
    g_provider = std::move(p);
}

std::string noGpuReason(int cudaError, bool driverInstalled, const std::string& cudaText) {
    // cudaErrorInsufficientDriver (35) is also what the runtime says with no driver at all
    if (!driverInstalled && (cudaError == 35 || cudaError == 100))
        return "no GPU found (no NVIDIA driver is installed)";
    if (cudaError == 100 || cudaError == 0) return "no GPU found (the NVIDIA driver sees none)";
    if (cudaError == 35)
        return "the NVIDIA driver is older than this build's CUDA runtime; update the driver (" +
               cudaText + ")";
    return "no usable GPU: " + cudaText;
}

bool nvidiaDriverInstalled() {
    std::error_code ec;
    return std::filesystem::exists("/proc/driver/nvidia/version", ec) ||
           std::filesystem::exists("/dev/nvidiactl", ec);
}

bool gpuAvailable(std::string* why) {
    if (provider()) return true;
#ifdef QMPP_HAVE_CUDA
    std::string reason;
    int code = 0;
    const int count = kernels::deviceCount(&reason, &code);
    if (count > 0) return true;
    if (why) *why = noGpuReason(code, nvidiaDriverInstalled(), reason);
    return false;
#else
    if (why) *why = "this build has no CUDA support (built without nvcc)";
    return false;
#endif
}

std::unique_ptr<Backend> makeBackend(BackendKind kind, Precision precision,
                                     std::vector<std::string>& notes) {
    if (kind == BackendKind::Cpu) return makeCpuBackend();
    if (const auto p = provider())
        return p->make(kind == BackendKind::Auto ? BackendKind::Cuda : kind, precision);
    std::string why;
    const bool gpu = gpuAvailable(&why);
    if (!gpu) {
        if (kind != BackendKind::Auto)
            throw RuntimeFailure(std::string("backend ") + toString(kind) + ": " + why);
        if (precision == Precision::FP16)
            throw UsageError("fp16 needs a CUDA backend, and none is usable (" + why + ")");
        notes.push_back(why + "; using the CPU backend");
        return makeCpuBackend();
    }
#ifdef QMPP_HAVE_CUDA
    return makeCudaBackend(kind != BackendKind::CudaBasic, precision);
#else
    throw RuntimeFailure("unreachable: a GPU without CUDA support");
#endif
}

MergeResult runMerge(const TokenSet& t, const MergeParams& p) {
    return MergeSession().run(t, p);
}

MergeResult MergeSession::run(const TokenSet& t, const MergeParams& p) {
    validate(t, p);
    if (!m_backend || m_kind != p.backend || m_precision != p.precision) {
        m_backend.reset();
        m_notes.clear();
        m_backend = makeBackend(p.backend, p.precision, m_notes);
        m_kind = p.backend;
        m_precision = p.precision;
    }
    std::vector<std::string> notes = m_notes;
    MergeResult r;
#ifdef QMPP_HAVE_CUDA
    try {
        r = m_backend->run(t, p, resolveK(t.n, p));
    } catch (const kernels::CudaOutOfMemory& e) {
        // auto falls back to the CPU when the device runs out of memory; an explicit GPU
        // backend reports it.
        if (p.backend != BackendKind::Auto || p.precision == Precision::FP16)
            throw RuntimeFailure(e.what());
        notes.push_back(std::string(e.what()) + "; using the CPU backend");
        r = makeCpuBackend()->run(t, p, resolveK(t.n, p));
    }
#else
    r = m_backend->run(t, p, resolveK(t.n, p));
#endif
    r.notes.insert(r.notes.begin(), notes.begin(), notes.end());
    return r;
}

} // namespace qmpp
