// `qmpp check`: every kernel x version x precision against a float64 CPU reference, on fresh
// random inputs with outliers and on a real photo's tokens; outputs poisoned before each run.
// Without a GPU, the CPU backend's steps are checked against the same references.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace qmpp {

struct CheckOptions {
    bool quick = false;          // small sizes only (for compute-sanitizer runs)
    std::string backend = "all"; // "all", "cpu", "cuda-basic", "cuda"
    std::string photoTokens; // .npy [N, D] of a real photo (resources/samples/chelsea_tokens.npy)
    std::uint64_t seed = 0;  // 0: a fresh seed from std::random_device (printed)
};

struct CheckRow {
    std::string kernel, version, precision, input;
    long long n = 0, d = 0;
    double maxRelErr = 0, rtol = 0, atol = 0;
    bool pass = false;
    std::string note;
};

// Prints one line per variant and case, then "N passed, N failed"; returns the rows.
std::vector<CheckRow> runChecks(const CheckOptions& o, std::ostream& out);

} // namespace qmpp
