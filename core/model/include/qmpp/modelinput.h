// What a model evaluates: images as the model's normalized pixels, with labels where known.
#pragma once

#include "qmpp/vit.h"

namespace qmpp {

struct EvalItems {
    i64 count = 0;
    std::vector<float> pixels;      // [count, C, H, W], normalized
    std::vector<i64> labels;        // [count]; -1: no label
    std::vector<std::string> names; // file, or "t10k[i]"
    std::string source;             // what was read, for reports
    bool hasLabels() const;
};

// INPUT: an image file, a folder of images (labels from subfolder names matched to the class
// names, or to class indices), a pixel tensor .npy [B, C, H, W] already normalized, or with
// `dataset` an IDX folder (t10k-images-idx3-ubyte[.gz] and its labels). limit > 0 takes the
// first items only.
EvalItems loadEvalItems(const std::string& input, const VitConfig& c, bool dataset, i64 limit = 0);

// The model's preprocessing of 8-bit pixels [H, W, channels] (1 or 3): to the model's channels
// (luminance 0.299 R + 0.587 G + 0.114 B for one), /255, resized to the input size, normalized.
// Resizing is PyTorch's F.interpolate (bilinear: half-pixel centres, no antialiasing; nearest;
// bicubic with A = -0.75, clamped borders), so a model trained with it sees the same pixels.
std::vector<float> preprocess(const std::uint8_t* px, i64 h, i64 w, i64 channels,
                              const VitConfig& c);
// Resizes float images [C, H, W] to [C, oh, ow] as F.interpolate(mode, align_corners=False).
std::vector<float> resizeImage(const float* src, i64 c, i64 h, i64 w, i64 oh, i64 ow,
                               const std::string& mode);

} // namespace qmpp
