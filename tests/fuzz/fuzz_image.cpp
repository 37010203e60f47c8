// libFuzzer: the image tokenizer (OpenCV decode, resize, patches) must reject bad bytes with
// InputError and never crash. Each input is written to a file, as a user's image would be.
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"

#include <cstdint>
#include <string>
#include <unistd.h>

#include <cstdlib>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("OPENCV_LOG_LEVEL", "SILENT", 1); // decoders' complaints about broken files are expected
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "/tmp/qmpp-fuzz-image-" + std::to_string(getpid()) + ".png";
    qmpp::writeFileBytes(path, std::vector<std::uint8_t>(data, data + size));
    try {
        qmpp::ImageInput img;
        const qmpp::TokenSet t = qmpp::tokenizeImage(path, 16, nullptr, &img);
        if (t.n != static_cast<qmpp::i64>(t.gridRows) * t.gridCols || t.d != 768) __builtin_trap();
    } catch (const qmpp::InputError&) {
    } catch (const qmpp::UsageError&) {
    }
    return 0;
}
