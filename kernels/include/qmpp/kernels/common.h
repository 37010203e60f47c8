// CUDA error handling and device memory ownership for the kernels and their host callers.
#pragma once

#include "qmpp/kernels/device.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

// Throws CudaError naming file, line and the failing expression.
#define QMPP_CUDA_CHECK(expr) ::qmpp::kernels::cudaCheck((expr), #expr, __FILE__, __LINE__)
// After a launch: configuration errors surface through cudaGetLastError.
#define QMPP_CUDA_CHECK_LAUNCH() QMPP_CUDA_CHECK(cudaGetLastError())
// For destructors: prints instead of throwing.
#define QMPP_CUDA_CHECK_PRINT(expr)                                                                \
    ::qmpp::kernels::cudaCheckPrint((expr), #expr, __FILE__, __LINE__)

namespace qmpp::kernels {

void cudaCheck(cudaError_t err, const char* expr, const char* file, int line);
// cudaMalloc that reports running out of memory in a user's terms (CudaOutOfMemory: how much
// was asked for, how much the device has free).
void* deviceAlloc(std::size_t bytes);
void cudaCheckPrint(cudaError_t err, const char* expr, const char* file, int line) noexcept;

// Out-of-memory is reported apart, so callers can fall back to the CPU.
struct CudaOutOfMemory : CudaError {
    using CudaError::CudaError;
};

// Owns `count` elements of T in device memory.
template <class T> class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) { resize(count); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept
        : m_ptr(std::exchange(o.m_ptr, nullptr)), m_count(std::exchange(o.m_count, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            m_ptr = std::exchange(o.m_ptr, nullptr);
            m_count = std::exchange(o.m_count, 0);
        }
        return *this;
    }

    // Reallocates only when growing; contents are not kept.
    void resize(std::size_t count) {
        if (count <= m_capacity && m_ptr) {
            m_count = count;
            return;
        }
        release();
        if (count == 0) return;
        m_ptr = static_cast<T*>(deviceAlloc(count * sizeof(T)));
        m_count = m_capacity = count;
    }
    void upload(const T* host, std::size_t count, cudaStream_t s = nullptr) {
        resize(count);
        if (count)
            QMPP_CUDA_CHECK(
                cudaMemcpyAsync(m_ptr, host, count * sizeof(T), cudaMemcpyHostToDevice, s));
    }
    void download(T* host, std::size_t count, cudaStream_t s = nullptr) const {
        if (count)
            QMPP_CUDA_CHECK(
                cudaMemcpyAsync(host, m_ptr, count * sizeof(T), cudaMemcpyDeviceToHost, s));
    }
    // Fills every byte with `byte` (0xff poisons floats to NaN).
    void fillBytes(int byte, cudaStream_t s = nullptr) {
        if (m_count) QMPP_CUDA_CHECK(cudaMemsetAsync(m_ptr, byte, m_count * sizeof(T), s));
    }

    T* get() const { return m_ptr; }
    std::size_t size() const { return m_count; }

  private:
    void release() noexcept {
        if (m_ptr) QMPP_CUDA_CHECK_PRINT(cudaFree(m_ptr));
        m_ptr = nullptr;
        m_count = m_capacity = 0;
    }
    T* m_ptr = nullptr;
    std::size_t m_count = 0, m_capacity = 0;
};

// Page-locked host memory that only grows (cudaHostAlloc): copies from and to it run as DMA,
// asynchronously, at the link's speed. Contents are not kept when it grows.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    ~PinnedBuffer() { release(); }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    void* reserve(std::size_t bytes) {
        if (bytes > m_capacity || !m_ptr) {
            release();
            QMPP_CUDA_CHECK(cudaHostAlloc(&m_ptr, bytes ? bytes : 1, cudaHostAllocDefault));
            m_capacity = bytes;
        }
        return m_ptr;
    }

  private:
    void release() noexcept {
        if (m_ptr) QMPP_CUDA_CHECK_PRINT(cudaFreeHost(m_ptr));
        m_ptr = nullptr;
        m_capacity = 0;
    }
    void* m_ptr = nullptr;
    std::size_t m_capacity = 0;
};

// Holds a stream with a kernel that spins until release() (or 200 ms pass), so work queued
// behind it starts back to back: events around that work then measure GPU time alone, not the
// host's launch latency.
class StreamGate {
  public:
    StreamGate();
    ~StreamGate();
    StreamGate(const StreamGate&) = delete;
    StreamGate& operator=(const StreamGate&) = delete;
    void hold(cudaStream_t s);
    void release();

  private:
    volatile int* m_flag = nullptr; // page-locked, mapped into the device
};

// A CUDA event pair around a region of one stream; ms() synchronizes on the end event.
class EventTimer {
  public:
    EventTimer();
    ~EventTimer();
    EventTimer(const EventTimer&) = delete;
    EventTimer& operator=(const EventTimer&) = delete;
    void start(cudaStream_t s);
    void stop(cudaStream_t s);
    float ms() const;

  private:
    cudaEvent_t m_start = nullptr, m_stop = nullptr;
};

// Events at stage boundaries on one stream, read once after the stream has been synchronized,
// so timing the stages costs no host round trip between them.
class StageTimeline {
  public:
    StageTimeline() = default;
    ~StageTimeline();
    StageTimeline(const StageTimeline&) = delete;
    StageTimeline& operator=(const StageTimeline&) = delete;
    void begin(cudaStream_t s);                          // the first boundary
    void mark(const std::string& stage, cudaStream_t s); // the end of `stage`, start of the next
    // [stage, ms] in order; call after the stream is synchronized
    std::vector<std::pair<std::string, float>> resolve() const;

  private:
    std::vector<cudaEvent_t> m_events;
    std::vector<std::string> m_names;
    std::size_t m_used = 0;
};

} // namespace qmpp::kernels
