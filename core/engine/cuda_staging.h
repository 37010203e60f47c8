// How the CUDA stages move data (internal to core/engine): host floats staged to the device in
// the working precision, results gathered into one download, stage launches replayed as cached
// CUDA graphs keyed by everything they depend on.
#pragma once

#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qmpp::staging {

namespace k = kernels;
using k::DeviceBuffer;

// Host floats to device memory in T through page-locked staging: chunks are copied (or
// converted to half) by all cores, and each chunk's DMA overlaps the next chunk's conversion.
void uploadStaged(const float* host, std::size_t count, void* dev, bool half, k::PinnedBuffer& pin,
                  cudaStream_t s);

// Results gathered on the device into one buffer, one DMA into page-locked memory, then copied
// out to their vectors by all cores.
class Download {
  public:
    template <class T> void add(const DeviceBuffer<T>& src, T* host, std::size_t count) {
        if (!count) return;
        m_segs.push_back({src.get(), count * sizeof(T), m_bytes});
        m_hosts.push_back(host);
        m_bytes += (count * sizeof(T) + 15) / 16 * 16;
    }
    void run(DeviceBuffer<std::uint8_t>& packed, k::PinnedBuffer& pin, cudaStream_t s);
    // After the stream is synchronized.
    void finish() const;

  private:
    std::vector<k::PackSegment> m_segs;
    std::vector<void*> m_hosts;
    std::size_t m_bytes = 0;
    unsigned char* m_pinned = nullptr;
};

// Whether stages may be replayed as graphs (QMPP_CUDA_GRAPHS=0 turns them off).
bool graphsEnabled();

// A cache key from sizes and buffer addresses.
std::string keyPart(long long v);
std::string keyPart(const void* p);
template <class... A> std::string keyOf(const A&... a) {
    std::string key;
    ((key += keyPart(a) + ","), ...);
    return key;
}

// One stage's launches as a CUDA graph, cached by a key of everything they depend on (shapes,
// buffer addresses, parameters): the second run with a key captures them, later runs with it
// relaunch the graph, which saves the host's per-launch cost (many small kernels at small N).
class CachedGraph {
  public:
    CachedGraph() = default;
    ~CachedGraph() { reset(); }
    CachedGraph(const CachedGraph&) = delete;
    CachedGraph& operator=(const CachedGraph&) = delete;
    // Enqueues `work` on s, directly or as the cached graph.
    template <class F> void run(const std::string& key, cudaStream_t s, F&& work) {
        if (!graphsEnabled()) return work();
        if (m_exec && key == m_key) {
            QMPP_CUDA_CHECK(cudaGraphLaunch(m_exec, s));
            return;
        }
        if (key != m_seen) { // first sighting: run directly (buffers may still grow)
            m_seen = key;
            return work();
        }
        reset();
        cudaGraph_t g = nullptr;
        QMPP_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        try {
            work();
        } catch (...) {
            if (cudaStreamEndCapture(s, &g) == cudaSuccess && g) cudaGraphDestroy(g);
            throw;
        }
        QMPP_CUDA_CHECK(cudaStreamEndCapture(s, &g));
        const cudaError_t inst = cudaGraphInstantiate(&m_exec, g, 0);
        QMPP_CUDA_CHECK_PRINT(cudaGraphDestroy(g));
        QMPP_CUDA_CHECK(inst);
        m_key = key;
        QMPP_CUDA_CHECK(cudaGraphLaunch(m_exec, s));
    }

  private:
    void reset() noexcept {
        if (m_exec) QMPP_CUDA_CHECK_PRINT(cudaGraphExecDestroy(m_exec));
        m_exec = nullptr;
        m_key.clear();
    }
    cudaGraphExec_t m_exec = nullptr;
    std::string m_key, m_seen;
};

} // namespace qmpp::staging
