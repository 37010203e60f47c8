// Overlay images of a merge, written as files (OpenCV; builds without it refuse with a message).
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/overlay.h"
#include "qmpp/types.h"

#include <string>
#include <vector>

namespace qmpp {

// saliency.png, clusters.png and merged.png for an image input; returns the names written.
std::vector<std::string> writeImageOverlays(const ImageInput& img, const TokenSet& t,
                                            const MergeResult& r, const std::string& dir);

// `img` as a PNG file (OpenCV; OutputError naming the file when it cannot be written).
void writeRgbPng(const RgbImage& img, const std::string& path);

} // namespace qmpp
