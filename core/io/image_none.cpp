// Built without OpenCV (e.g. a GPU server): image input is refused with a way forward.
#include "qmpp/error.h"
#include "qmpp/inputs.h"

namespace qmpp {

static const char* kNoOpenCV =
    ": image input needs OpenCV, which this build lacks; run `qmpp tokenize` on a machine with "
    "OpenCV and pass the resulting tokens.npy here";

bool haveImageSupport() {
    return false;
}

TokenSet tokenizeImage(const std::string& path, int, const Projection*, ImageInput*) {
    throw InputError(path + kNoOpenCV);
}

std::vector<std::uint8_t> decodeImageRgb(const std::string& path, int&, int&) {
    throw InputError(path + kNoOpenCV);
}

} // namespace qmpp
