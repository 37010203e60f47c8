// Display images of a result, made on the worker thread.
#pragma once

#include "runner.h"

namespace studio {

// Fills out.saliency, mask, clusters, merged and groups from out.result and the input.
void makeDisplayImages(const StudioInput& input, RunOutput& out);
// The base picture of an input: the resized photo, or a grey token grid for embeddings.
QImage baseImage(const StudioInput& input);
// Token grid of an input: (rows, cols) and the pixel size of one token cell in baseImage().
struct Grid {
    int rows = 0, cols = 0, cell = 1;
};
Grid gridOf(const StudioInput& input);

} // namespace studio
