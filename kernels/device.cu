// Device discovery, error checks, timers and names shared by every kernel file.
#include "common.cuh"
#include "wgmma.cuh"

#include <algorithm>
#include <cstdio>

namespace qmpp::kernels {

int deviceCount(std::string* why, int* code) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (code) *code = static_cast<int>(err);
    if (err != cudaSuccess) {
        if (why)
            *why = std::string(cudaGetErrorString(err)) +
                   " (cudaGetDeviceCount = " + std::to_string(static_cast<int>(err)) + ")";
        cudaGetLastError(); // clear it so later calls start clean
        return 0;
    }
    if (n == 0 && why) *why = "the driver reports no CUDA device";
    return n;
}

DeviceInfo deviceInfo(int device) {
    cudaDeviceProp p{};
    QMPP_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    DeviceInfo info;
    info.name = p.name;
    info.major = p.major;
    info.minor = p.minor;
    info.smCount = p.multiProcessorCount;
    info.totalMemory = p.totalGlobalMem;
    return info;
}

const DeviceInfo& currentDeviceInfo() {
    static const DeviceInfo info = [] {
        int dev = 0;
        QMPP_CUDA_CHECK(cudaGetDevice(&dev));
        return deviceInfo(dev);
    }();
    return info;
}

void cudaCheck(cudaError_t err, const char* expr, const char* file, int line) {
    if (err == cudaSuccess) return;
    const std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " +
                            cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        throw CudaOutOfMemory("GPU out of memory: " + msg);
    }
    throw CudaError(msg);
}

void* deviceAlloc(std::size_t bytes) {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaSuccess) return p;
    if (err != cudaErrorMemoryAllocation) cudaCheck(err, "cudaMalloc", __FILE__, __LINE__);
    cudaGetLastError(); // clear the sticky-free error state
    std::size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    auto mib = [](std::size_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; };
    throw CudaOutOfMemory("GPU out of memory: a buffer of " + mib(bytes) + " does not fit (" +
                          mib(free) + " free of " + mib(total) +
                          "; other processes may hold the rest)");
}

void cudaCheckPrint(cudaError_t err, const char* expr, const char* file, int line) noexcept {
    if (err != cudaSuccess)
        std::fprintf(stderr, "qmpp: %s:%d: %s: %s\n", file, line, expr, cudaGetErrorString(err));
}

__global__ void gate_kernel(const volatile int* flag) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        if (*flag) return;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < 200000000ull); // 200 ms: a host blocked in the gated work is not a hang
}

StreamGate::StreamGate() {
    void* p = nullptr;
    QMPP_CUDA_CHECK(cudaHostAlloc(&p, sizeof(int), cudaHostAllocMapped));
    m_flag = static_cast<volatile int*>(p);
    *m_flag = 0;
}
StreamGate::~StreamGate() {
    QMPP_CUDA_CHECK_PRINT(cudaFreeHost(const_cast<int*>(m_flag)));
}
void StreamGate::hold(cudaStream_t s) {
    *m_flag = 0;
    void* dev = nullptr;
    QMPP_CUDA_CHECK(cudaHostGetDevicePointer(&dev, const_cast<int*>(m_flag), 0));
    gate_kernel<<<1, 1, 0, s>>>(static_cast<const volatile int*>(dev));
    QMPP_CUDA_CHECK_LAUNCH();
}
void StreamGate::release() {
    *m_flag = 1;
}

EventTimer::EventTimer() {
    QMPP_CUDA_CHECK(cudaEventCreate(&m_start));
    QMPP_CUDA_CHECK(cudaEventCreate(&m_stop));
}
EventTimer::~EventTimer() {
    QMPP_CUDA_CHECK_PRINT(cudaEventDestroy(m_start));
    QMPP_CUDA_CHECK_PRINT(cudaEventDestroy(m_stop));
}
void EventTimer::start(cudaStream_t s) {
    QMPP_CUDA_CHECK(cudaEventRecord(m_start, s));
}
void EventTimer::stop(cudaStream_t s) {
    QMPP_CUDA_CHECK(cudaEventRecord(m_stop, s));
}
float EventTimer::ms() const {
    QMPP_CUDA_CHECK(cudaEventSynchronize(m_stop));
    float ms = 0;
    QMPP_CUDA_CHECK(cudaEventElapsedTime(&ms, m_start, m_stop));
    return ms;
}

StageTimeline::~StageTimeline() {
    for (cudaEvent_t e : m_events)
        QMPP_CUDA_CHECK_PRINT(cudaEventDestroy(e));
}
void StageTimeline::begin(cudaStream_t s) {
    m_used = 0;
    m_names.clear();
    mark("", s);
}
void StageTimeline::mark(const std::string& stage, cudaStream_t s) {
    if (m_used == m_events.size()) {
        cudaEvent_t e = nullptr;
        QMPP_CUDA_CHECK(cudaEventCreate(&e));
        m_events.push_back(e);
    }
    QMPP_CUDA_CHECK(cudaEventRecord(m_events[m_used++], s));
    m_names.push_back(stage);
}
std::vector<std::pair<std::string, float>> StageTimeline::resolve() const {
    std::vector<std::pair<std::string, float>> out;
    for (std::size_t i = 1; i < m_used; ++i) {
        float ms = 0;
        QMPP_CUDA_CHECK(cudaEventElapsedTime(&ms, m_events[i - 1], m_events[i]));
        out.emplace_back(m_names[i], ms);
    }
    return out;
}

const char* versionName(Version v) {
    return v == Version::Basic ? "basic" : "optimized";
}
const char* precName(Prec p) {
    return p == Prec::F16 ? "fp16" : "fp32";
}

const char* kernelName(Kernel k) {
    switch (k) {
    case Kernel::EntropyGram:
        return "entropy_gram";
    case Kernel::EntropyMaps:
        return "entropy_maps";
    case Kernel::Saliency:
        return "saliency";
    case Kernel::Cosine:
        return "cosine";
    case Kernel::Gumbel:
        return "gumbel";
    case Kernel::TopK:
        return "topk";
    case Kernel::Assign:
        return "assign";
    case Kernel::Centres:
        return "centres";
    case Kernel::Merge:
        return "merge";
    case Kernel::ArHeads:
        return "ar_heads";
    case Kernel::Metrics:
        return "metrics";
    }
    return "?";
}

bool available(Kernel, Version) {
    return true;
} // every kernel has both versions

bool warpgroupTiles() {
    return wg::available();
}

bool dependentLaunches() {
    return currentDeviceInfo().major >= 9;
}

__global__ void to_half_kernel(const float* in, __half* out, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half_rn(in[i]);
}

void toHalf(const float* in, void* out, std::size_t n, cudaStream_t s) {
    if (n == 0) return;
    to_half_kernel<<<blocksFor(n, 256), 256, 0, s>>>(in, static_cast<__half*>(out), (long long)n);
    QMPP_CUDA_CHECK_LAUNCH();
}

struct PackList {
    PackSegment seg[kMaxPack];
};

// blockIdx.y: the segment; word-wise grid-stride copy.
__global__ void pack_kernel(PackList l, unsigned* dst) {
    const PackSegment sg = l.seg[blockIdx.y];
    const unsigned* src = static_cast<const unsigned*>(sg.src);
    unsigned* out = dst + sg.offset / 4;
    const long long words = (long long)(sg.bytes / 4);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < words;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = src[i];
}

void pack(const PackSegment* segs, int count, void* dst, cudaStream_t s) {
    if (count < 1) return;
    if (count > kMaxPack)
        throw CudaError("pack: more than " + std::to_string(kMaxPack) + " segments");
    PackList l;
    std::size_t most = 0;
    for (int i = 0; i < count; ++i) {
        if (segs[i].bytes % 4 || segs[i].offset % 4)
            throw CudaError("pack: sizes and offsets must be whole words");
        l.seg[i] = segs[i];
        most = std::max(most, segs[i].bytes / 4);
    }
    const unsigned blocks = std::min<unsigned>(blocksFor((long long)most, 256), 256);
    pack_kernel<<<dim3(std::max(blocks, 1u), count), 256, 0, s>>>(l, static_cast<unsigned*>(dst));
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels
