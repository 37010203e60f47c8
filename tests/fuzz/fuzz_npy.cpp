// libFuzzer: the .npy reader must reject bad bytes with InputError and never crash.
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const qmpp::NdArray a = qmpp::parseNpy(data, size, "fuzz.npy");
        // an accepted array is self-consistent, and survives a round trip
        if (a.bytes.size() != static_cast<std::size_t>(a.numel()) * qmpp::dtypeSize(a.dtype))
            __builtin_trap();
        if (a.dtype != qmpp::DType::BF16) {
            const auto enc = qmpp::encodeNpy(a);
            const qmpp::NdArray b = qmpp::parseNpy(enc.data(), enc.size(), "again.npy");
            if (b.bytes != a.bytes || b.shape != a.shape) __builtin_trap();
        }
    } catch (const qmpp::InputError&) {
    }
    return 0;
}
