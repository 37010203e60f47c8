// The engine's front door: validate, choose a backend, run the pipeline.
#pragma once

#include "qmpp/types.h"

#include <functional>
#include <memory>

namespace qmpp {

constexpr const char* kVersion = "0.1.0";

// A backend runs the whole pipeline for one token set. The CPU backend composes the free
// functions of ops.h; a GPU backend keeps every stage on the device.
class Backend {
  public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;   // "cpu", "cuda-basic", "cuda"
    virtual std::string device() const = 0; // human-readable device name
    virtual MergeResult run(const TokenSet& t, const MergeParams& p, i64 k) = 0;
};

std::unique_ptr<Backend> makeCpuBackend();
// The backend for `kind`; Auto takes a GPU when one is usable and the CPU otherwise, with the
// reason appended to `notes`. An explicit GPU kind without a device is a RuntimeFailure.
std::unique_ptr<Backend> makeBackend(BackendKind kind, Precision precision,
                                     std::vector<std::string>& notes);
// Whether a CUDA device can be used, and if not why ("no GPU found (...)", see noGpuReason).
bool gpuAvailable(std::string* why = nullptr);

// Stands in for the CUDA device: tests (and demonstrations on machines without a GPU) drive the
// GPU paths of callers through it. While one is set, gpuAvailable() is true and makeBackend()
// asks it for every GPU kind. nullptr removes it.
struct DeviceProvider {
    std::string name;
    std::function<std::unique_ptr<Backend>(BackendKind kind, Precision precision)> make;
};
void setDeviceProvider(std::shared_ptr<const DeviceProvider> provider);

// The largest token dimension D the engine accepts: the AR heads alone hold 4 x 256 x D weights
// (134 MB at this limit), so a few bytes of header cannot make it allocate gigabytes.
constexpr i64 kMaxTokenDim = 32768;
// The largest magnitude of a token, hidden-state or attention value: products of D <= 32,768 such
// values stay finite in float32 (1e30 x 32,768 < 3.4e38), so no sum overflows to NaN.
constexpr double kMaxValueMagnitude = 1e15;
// The temperature's floor: (s + g) / tau stays finite in float32 on every backend.
constexpr double kMinTemperature = 1e-6;

// K from the parameters: k if set, else max(1, floor(budget * N)).
i64 resolveK(i64 n, const MergeParams& p);
// Shape, range and finiteness checks with a message a user understands (UsageError for bad
// parameters, InputError for bad data).
void validate(const TokenSet& t, const MergeParams& p);

// Why no GPU can be used, in a user's words, from cudaGetDeviceCount's error code and text and
// whether an NVIDIA driver is installed ("no GPU found" when there is no driver at all, not the
// runtime's "CUDA driver version is insufficient").
std::string noGpuReason(int cudaError, bool driverInstalled, const std::string& cudaText);

// validate + makeBackend + run.
MergeResult runMerge(const TokenSet& t, const MergeParams& p);

// runMerge for a stream of token sets (video frames, sweeps): one backend, with its device
// buffers and generators, is kept while the backend kind and precision stay the same.
class MergeSession {
  public:
    MergeResult run(const TokenSet& t, const MergeParams& p);

  private:
    std::unique_ptr<Backend> m_backend;
    BackendKind m_kind = BackendKind::Auto;
    Precision m_precision = Precision::FP32;
    std::vector<std::string> m_notes; // why the backend was chosen
};

} // namespace qmpp
