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

std::vector<std::string> writeImageOverlays(const ImageInput& img, const TokenSet&,
                                            const MergeResult&, const std::string&) {
    throw InputError(img.path + kNoOpenCV);
}

} // namespace qmpp

#include "qmpp/sweep.h"

namespace qmpp {
void writeSweepPlot(const std::vector<SweepRow>&, const std::string& path) {
    throw InputError(
        path +
        ": plots are drawn with OpenCV, which this build lacks (the CSV and JSON hold the data)");
}
} // namespace qmpp
