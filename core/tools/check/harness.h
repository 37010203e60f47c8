// The harness of `qmpp check`, internal to core/tools: tolerances, comparison against float64
// references, the result printer, and (with CUDA) the device helpers and the state one kernel
// pass shares. One file per operation holds its reference beside its checks (llm.c's habit).
// Tolerances: |out - ref| <= atol + rtol |ref| per element. FP32: rtol 1e-4, atol 1e-5.
// FP16 (half storage, float accumulation) is compared with a reference computed from the same
// half-rounded inputs: rtol 1e-3, atol 1e-4. Entropies lie in [0, ln N] and peaked rows sit
// near 0, where float scores (|z| in the hundreds for real photos) leave an absolute error:
// their atol is rtol * ln N. Discrete outputs (top-K, assignment) must be
// exact, or optimal within 1e-5 of the best similarity (a near-tie).
#pragma once

#include "qmpp/array.h"
#include "qmpp/check.h"
#include "qmpp/ops.h"

#ifdef QMPP_HAVE_CUDA
#include "qmpp/kernels/common.h"
#include "qmpp/kernels/ops.h"
#include "qmpp/kernels/params.h"
#endif

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace qmpp::check {

struct Tol {
    double atol, rtol;
};
constexpr Tol kF32{1e-5, 1e-4}, kF16{1e-4, 1e-3};

struct Cmp {
    double maxRel = 0;
    bool pass = true;
    std::string note;
};

template <class Out> Cmp compare(const Out* out, const double* ref, std::size_t n, Tol t) {
    Cmp c;
    for (std::size_t i = 0; i < n; ++i) {
        const double o = double(out[i]);
        if (!std::isfinite(o)) {
            if (c.pass) c.note = "non-finite output at " + std::to_string(i) + " (unwritten?)";
            c.pass = false;
            c.maxRel = INFINITY;
            continue;
        }
        const double err = std::abs(o - ref[i]);
        c.maxRel = std::max(c.maxRel, err / std::max(std::abs(ref[i]), t.atol / t.rtol));
        if (err > t.atol + t.rtol * std::abs(ref[i])) {
            if (c.pass) c.note = "first bad element " + std::to_string(i);
            c.pass = false;
        }
    }
    return c;
}

inline Tol entropyTol(Tol t, i64 n) {
    return {t.rtol * std::log(double(std::max<i64>(n, 2))), t.rtol};
}

inline std::vector<float> roundHalf(std::vector<float> v) {
    for (auto& e : v)
        e = halfToFloat(floatToHalf(e));
    return v;
}

struct Input {
    std::string name;
    i64 n, d;
    std::vector<float> x;
};

// founderOf of a foreground: c at idx[c], -1 elsewhere.
inline std::vector<int> founderMap(const std::vector<i64>& idx, i64 n) {
    std::vector<int> f(static_cast<std::size_t>(n), -1);
    for (std::size_t c = 0; c < idx.size(); ++c)
        f[idx[c]] = static_cast<int>(c);
    return f;
}

// Random group labels with every group non-empty, and positive masses.
inline void randomGroups(i64 n, i64 k, std::mt19937_64& rng, std::vector<int>& labels,
                         std::vector<float>& mass) {
    labels.resize(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
        labels[i] = static_cast<int>(i % k);
    std::shuffle(labels.begin(), labels.end(), rng);
    std::uniform_real_distribution<float> u(0.01f, 1.0f);
    mass.resize(static_cast<std::size_t>(n));
    for (auto& m : mass)
        m = u(rng);
}

class Printer {
  public:
    explicit Printer(std::ostream& out) : m_out(out) {
        m_out << std::left << std::setw(13) << "kernel" << std::setw(10) << "version"
              << std::setw(6) << "prec" << std::setw(18) << "input" << std::right << std::setw(7)
              << "N" << std::setw(6) << "D" << std::setw(13) << "max rel err" << std::setw(9)
              << "rtol"
              << "  result\n";
    }
    void row(CheckRow r) {
        m_out << std::left << std::setw(13) << r.kernel << std::setw(10) << r.version
              << std::setw(6) << r.precision << std::setw(18) << r.input << std::right
              << std::setw(7) << r.n << std::setw(6) << r.d << std::setw(13) << std::scientific
              << std::setprecision(2) << r.maxRelErr << std::setw(9) << r.rtol << std::defaultfloat
              << "  " << (r.pass ? "PASS" : "FAIL") << (r.note.empty() ? "" : "  (" + r.note + ")")
              << "\n";
        m_rows.push_back(std::move(r));
    }
    void add(const std::string& kernel, const std::string& version, const std::string& prec,
             const Input& in, const Cmp& c, Tol t) {
        row({kernel, version, prec, in.name, in.n, in.d, c.maxRel, t.rtol, t.atol, c.pass, c.note});
    }
    void skipped(const std::string& kernel, const std::string& version, const std::string& prec,
                 const Input& in) {
        m_out << std::left << std::setw(13) << kernel << std::setw(10) << version << std::setw(6)
              << prec << std::setw(18) << in.name << std::right << std::setw(7) << in.n
              << std::setw(6) << in.d << "  SKIP  (no " << version << " version yet)\n";
    }
    std::vector<CheckRow>& rows() { return m_rows; }

  private:
    std::ostream& m_out;
    std::vector<CheckRow> m_rows;
};

// ---- the CPU steps (one function per operation) ----------------------------------------------

// entropy and saliency; returns the entropies for the saliency check
void checkEntropyCpu(const Input& in, Printer& pr);
// merge on random groups; returns the merged tokens [K, D] (K = max(1, N / 5))
std::vector<float> checkMergeCpu(const Input& in, std::mt19937_64& rng, Printer& pr);
void checkArCpu(const Input& in, const std::vector<float>& merged, Printer& pr);

#ifdef QMPP_HAVE_CUDA
namespace kk = kernels;

// ---- the kernels ---------------------------------------------------------------------------

struct Dev {
    kk::DeviceBuffer<float> f32;
    kk::DeviceBuffer<std::uint16_t> f16;
    // Uploads v in the precision's storage; returns the device pointer.
    const void* put(const std::vector<float>& v, kk::Prec p) {
        f32.upload(v.data(), v.size());
        if (p == kk::Prec::F32) return f32.get();
        f16.resize(v.size());
        kk::toHalf(f32.get(), f16.get(), v.size(), nullptr);
        return f16.get();
    }
};

template <class T> std::vector<T> fetch(const kk::DeviceBuffer<T>& b, std::size_t n) {
    std::vector<T> v(n);
    b.download(v.data(), n);
    QMPP_CUDA_CHECK(cudaDeviceSynchronize());
    return v;
}

template <class T> void poison(kk::DeviceBuffer<T>& b, std::size_t n) {
    b.resize(n);
    b.fillBytes(0xff);
}

// What the checks of one input, version and precision share.
struct KernelCase {
    KernelCase(const Input& input, kk::Version version, kk::Prec prec, std::mt19937_64& r,
               Printer& printer)
        : in(input), n(input.n), d(input.d), v(version), p(prec), vn(kk::versionName(version)),
          pn(kk::precName(prec)), tol(prec == kk::Prec::F16 ? kF16 : kF32),
          x(prec == kk::Prec::F16 ? roundHalf(input.x) : input.x), X(dx.put(input.x, prec)),
          // the optimized FP16 kernels' warpgroup tiles, checked forced where they run (16-byte
          // rows)
          warpgroups(version == kk::Version::Optimized && prec == kk::Prec::F16 &&
                     kk::warpgroupTiles() && input.d % 8 == 0),
          k(std::max<i64>(1, input.n / 5)), rng(r), pr(printer) {}
    // A kernel without this version is reported as skipped: neither a pass nor a failure.
    bool skip(kk::Kernel kern) {
        if (kk::available(kern, v)) return false;
        pr.skipped(kk::kernelName(kern), vn, pn, in);
        return true;
    }

    const Input& in;
    i64 n, d;
    kk::Version v;
    kk::Prec p;
    std::string vn, pn;
    Tol tol;
    std::vector<float> x; // what the device sees (half-rounded for FP16)
    Dev dx;
    const void* X; // the tokens on the device
    bool warpgroups;
    i64 k;
    std::mt19937_64& rng;
    Printer& pr;
    std::vector<float> keysHost; // the gumbel kernel's keys, for the top-K check
    // random groups for centres, assign, merge and metrics (makeGroups)
    std::vector<int> groups;
    std::vector<float> mass;
    kk::DeviceBuffer<int> dgroups;
    kk::DeviceBuffer<float> dmass;
    std::vector<double> centresRef; // the groups' reference centres [K, D]
    std::vector<float> centresF;    // the same in float (the assignment's centres)

    // The checks, one per kernel, in the order checkKernels runs them. `rows`: check these rows
    // only (the large case), and nothing else.
    void checkEntropyGramKernel(const std::vector<i64>* rows);
    void checkEntropyMapsKernel();
    void checkSaliencyKernel();
    void checkCosineKernel();
    void checkGumbelKernels(); // gumbel, and the fused gumbel + top-K
    void checkTopKKernel();
    void makeGroups(); // random groups for the checks below
    void checkCentresKernel();
    void checkAssignKernel();
    void checkMergeKernel();
    void checkArKernel();
    void checkMetricsKernel();
};

// uniforms, and the whole pipeline against the CPU (graph replays, resident inputs)
void checkStep(const std::vector<Input>& inputs, const CheckOptions& o, std::mt19937_64& rng,
               Printer& pr);
void checkPipeline(const std::vector<Input>& inputs, const CheckOptions& o, std::mt19937_64& rng,
                   Printer& pr);
#endif

} // namespace qmpp::check
