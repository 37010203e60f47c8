// libFuzzer: the .safetensors reader must reject bad bytes with InputError and never crash.
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const qmpp::TensorFile f = qmpp::parseSafetensors(data, size, "fuzz.safetensors");
        for (const auto& [name, a] : f.tensors)
            if (a.bytes.size() != static_cast<std::size_t>(a.numel()) * qmpp::dtypeSize(a.dtype))
                __builtin_trap();
    } catch (const qmpp::InputError&) {
    }
    return 0;
}
