// What the Model page draws, as plain functions of the model's input and a forward's trace
// (qmpp/explain.h): the input as the model sees it, ToMe's source visualization, heat maps of
// per-patch values, and top-k probabilities. No widgets here: the tests call them directly.
#pragma once

#include "qmpp/explain.h"
#include "qmpp/vit.h"

#include <QImage>
#include <QString>
#include <QStringList>

#include <utility>
#include <vector>

namespace studio {

// The model's input pixels [C, H, W] (normalized) back to 8-bit: grey for one channel.
QImage modelInputImage(const qmpp::VitConfig& c, const float* pixels);

// ToMe's visualization of sources (tome/vis.py make_visualization): each token's patches
// filled with their mean colour in `input`, its outline (the patches' edge pixels after one
// erosion) in the token's own colour. Dropped patches are black. `scale` pixels per input pixel.
QImage sourcesImage(const QImage& input, const std::vector<std::int32_t>& owner, int grid,
                    int scale);
// Per-patch values (NaN: none, drawn dark) as viridis, min-max normalized, blended over the
// input with `alpha`; `scale` as above.
QImage heatImage(const QImage& input, const std::vector<double>& perPatch, int grid, int scale,
                 double alpha);

// The k most probable classes of softmax(logits), most probable first: (class, probability).
std::vector<std::pair<int, double>> topProbabilities(const std::vector<float>& logits, int k);

// What the overlay shows at the chosen block.
enum class ModelOverlay { Input, Sources, Saliency, ClassAttention, Rollout, HeadAttention };
QStringList modelOverlayNames(); // in enum order, for the selector

// The overlay's values per patch at block `block` of `tr` (Sources and Input: none). For
// HeadAttention, the attention of the token holding patch `patch` (head < 0: mean of heads).
std::vector<double> overlayValues(ModelOverlay o, const qmpp::ForwardTrace& tr,
                                  const qmpp::Rollout& ro, const qmpp::VitConfig& c, int block,
                                  int patch, int head);

} // namespace studio
