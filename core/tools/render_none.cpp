// Built without OpenCV (e.g. a GPU server): overlay images, the sweep plot and the overlay video
// are refused with a way forward; the arrays and reports are written as always.
#include "qmpp/error.h"
#include "qmpp/plotting.h"
#include "qmpp/render.h"
#include "qmpp/sweep.h"
#include "qmpp/videoexport.h"

namespace qmpp {

std::vector<std::string> writeImageOverlays(const ImageInput& img, const TokenSet&,
                                            const MergeResult&, const std::string&) {
    throw InputError(img.path + ": overlay images need OpenCV, which this build lacks");
}

void writeRgbPng(const RgbImage&, const std::string& path) {
    throw InputError(path + ": images are written with OpenCV, which this build lacks");
}

void writeCurvePanels(const std::vector<CurvePanel>&, const std::string&, const std::string& path) {
    throw InputError(
        path +
        ": plots are drawn with OpenCV, which this build lacks (the CSV and JSON hold the data)");
}

void writeSweepPlot(const std::vector<SweepRow>&, const std::string& path) {
    writeCurvePanels({}, {}, path);
}

VideoRun exportVideo(const std::string& path, const VideoOptions&, FrameRange, const MergeParams&,
                     const std::string&, bool, const Progress&) {
    throw InputError(path + ": video input needs OpenCV, which this build lacks; run `qmpp "
                            "tokenize VIDEO --frames A:B --out frames.npy` on a machine with "
                            "OpenCV and pass frames.npy here");
}

} // namespace qmpp
