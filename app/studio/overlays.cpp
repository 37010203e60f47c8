// The canvas pictures: core's one renderer (qmpp/overlay.h), wrapped in QImages.
#include "overlays.h"

#include "qmpp/overlay.h"

#include <algorithm>

namespace studio {

namespace {

QImage toQImage(const qmpp::RgbImage& img) {
    if (img.width <= 0 || img.height <= 0) return {};
    return QImage(img.rgb.data(), img.width, img.height, img.width * 3, QImage::Format_RGB888)
        .convertToFormat(QImage::Format_RGB32);
}

int patchOf(const StudioInput& input) {
    return input.isImage() ? input.loaded->image->patch : 16;
}

qmpp::TokenGrid coreGrid(const StudioInput& input) {
    return qmpp::tokenGrid(input.tokens(), patchOf(input));
}

qmpp::RgbImage coreBase(const StudioInput& input) {
    if (input.isImage()) return qmpp::baseImage(*input.loaded->image);
    return qmpp::gridImage(coreGrid(input), input.tokens().n);
}

} // namespace

Grid gridOf(const StudioInput& input) {
    const qmpp::TokenGrid g = coreGrid(input);
    return Grid{g.rows, g.cols, g.cell};
}

QImage baseImage(const StudioInput& input) {
    return toQImage(coreBase(input));
}

void makeDisplayImages(const StudioInput& input, RunOutput& out) {
    const auto& r = out.result;
    qmpp::TokenGrid g = coreGrid(input);
    const int tubelet = std::max(1, input.tubelet);
    if (input.isVideo()) // the shown frame's temporal slot of the unit's tokens
        g.offset = qmpp::i64((input.frame - input.unitBegin) / tubelet) * g.rows * g.cols;
    out.saliency = toQImage(qmpp::tokenHeatmap(g, r.n, r.saliency.data()));
    const float piMax = r.pi.empty() ? 1.0f : *std::max_element(r.pi.begin(), r.pi.end());
    out.mask =
        r.pi.empty()
            ? QImage()
            : toQImage(qmpp::tokenHeatmap(g, r.n, r.pi.data(), piMax > 0 ? 1.0 / piMax : 1.0));
    qmpp::PixelTokens px;
    px.raw = input.isImage() && !input.loaded->image->projected;
    px.patch = g.cell;
    px.tubelet = tubelet;
    px.tau = input.tau;
    const qmpp::GroupPictures pics = qmpp::renderGroups(coreBase(input), g, r, px);
    out.clusters = toQImage(pics.clusters);
    out.groups = toQImage(pics.groups);
    out.merged = toQImage(pics.merged);
}

} // namespace studio
