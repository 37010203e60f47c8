// Errors of the engine, each mapped to one CLI exit code (2 usage, 3 bad input, 4 runtime).
#pragma once

#include <stdexcept>
#include <string>

namespace qmpp {

// A caller asked for something that makes no sense (K < 1, tau <= 0, fp16 on the CPU...).
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A file or array the user supplied is unusable (truncated .npy, NaN, wrong shape...).
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The output location cannot take the results (folder not writable, disk full, file-size limit).
// Like bad input, the user fixes it by pointing elsewhere: CLI exit 3.
struct OutputError : InputError {
    using InputError::InputError;
};

// Something failed while running (out of memory, device error, disk full...).
struct RuntimeFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

} // namespace qmpp
