// Turning a user's file into token sets: embeddings (.npy/.safetensors) and images (OpenCV).
#pragma once

#include "qmpp/types.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qmpp {

enum class InputKind { Embeddings, Image, Video, Unknown };
InputKind inputKind(const std::string& path); // from the extension
bool haveImageSupport();                      // built with OpenCV

// A ViT patch-embedding conv weight [D', 3, P, P] (flattened to [D', 3*P*P]) and bias [D'].
struct Projection {
    i64 dOut = 0;
    int patch = 0;
    std::vector<float> weight; // [D', 3*P*P]
    std::vector<float> bias;   // [D'] (zeros when the file has none)
    std::string source;
};
// From .npy (the weight alone) or .safetensors (a 4-D "*weight" tensor and its "*bias").
Projection loadProjection(const std::string& path, int patch);

// The image as the engine saw it: resized so each side is a multiple of the patch size.
struct ImageInput {
    std::string path;
    int width = 0, height = 0, patch = 16;
    int originalWidth = 0, originalHeight = 0;
    std::vector<std::uint8_t> rgb; // [H, W, 3]
    bool projected = false;
};

// ImageNet normalization of pixel tokens (RGB): (v / 255 - mean) / std.
inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// InputError unless the file's header is a PNG, JPEG, BMP, TIFF or WebP header whose size is
// at most `maxPixels`: checked before any decoder allocates the pixels.
void requireImageSize(const std::string& path, double maxPixels);

// The decoded image as RGB bytes [H, W, 3], checked as tokenizeImage checks it.
std::vector<std::uint8_t> decodeImageRgb(const std::string& path, int& width, int& height);

// Image tokens: patches of P x P, channel-major (3, P, P), ImageNet-normalized, optionally
// projected; grid rows x cols, row-major token order.
TokenSet tokenizeImage(const std::string& path, int patch, const Projection* proj,
                       ImageInput* image);

// Tokens of decoded frames (RGB, one size, sides multiples of P): tubelets of `tubelet`
// consecutive frames x P x P, each flattened channel-major (3, T, P, P) and ImageNet-normalized.
// frames.size() / T temporal slots (gridFrames); tokens ordered (slot, row, col). One frame with
// T = 1 is exactly the image tokenizer. A projection applies to T = 1 only.
TokenSet tokenizeFrames(const std::vector<const ImageInput*>& frames, int tubelet,
                        const Projection* proj);

struct InputOptions {
    int patch = 16;
    std::string projection;   // ViT patch-embedding weights (images)
    std::string key;          // tensor name inside a .safetensors input
    i64 batch = -1;           // pick one item of a [B, N, D] input
    std::string hidden;       // hidden states [L, N, D]
    std::string hiddenKey;    // its tensor name in a .safetensors file (default "hidden_states")
    std::string attention;    // attention maps [L, N, N] or [L, H, N, N]
    std::string attentionKey; // its tensor name in a .safetensors file (default "attentions")
    std::string labels;       // one token label per line; empty: a .safetensors input's "labels"
                              // metadata (a JSON array of strings), when it has one
};

struct LoadedInput {
    InputKind kind = InputKind::Unknown;
    std::vector<TokenSet> items; // one per batch item
    bool batched = false;        // the input was [B, N, D] and no item was picked
    std::vector<i64> sourceShape;
    std::optional<ImageInput> image;
};
LoadedInput loadInput(const std::string& path, const InputOptions& opt);

struct NdArray;
// The steps of loadInput for arrays already in memory (the Python package's), with the same
// checks and messages; `name` stands where a message names the file.
// Tokens [N, D] or [B, N, D] (batch >= 0 picks one item) as token sets.
LoadedInput tokenSets(const NdArray& tokens, const std::string& name, i64 batch = -1);
// Hidden states [L, N, D] and attention maps [L, N, N] or [L, H, N, N] of one token set.
void attachHidden(TokenSet& t, const NdArray& hidden, const std::string& name);
void attachAttention(TokenSet& t, const NdArray& attention, const std::string& name);
// One label per token for every item; `source` names where they came from.
void attachLabels(std::vector<TokenSet>& items, const std::vector<std::string>& labels,
                  const std::string& source);

// The tensors of a .safetensors file (names, dtypes, shapes; the data is not read), for
// choosing keys. InputError as readSafetensors for a bad file.
struct TensorInfo {
    std::string key, dtype;
    std::vector<i64> shape;
};
std::vector<TensorInfo> listTensors(const std::string& path);

// The tensors of a .safetensors input that make one token set, as both front ends choose them:
// the only tensor, or "tokens", holds the tokens; "hidden_states" [L, N, D] and "attentions"
// [L, (H,) N, N] come with an [N, D] token tensor when their shapes fit. `ambiguous`: several
// tensors and none named "tokens" (the studio asks; the CLI needs --key).
// Whether hidden states [L, N, D] or attention maps [L, (H,) N, N] fit tokens [N, D].
bool hiddenFits(const TensorInfo& h, i64 n, i64 d);
bool attentionFits(const TensorInfo& a, i64 n);
struct TensorChoice {
    std::string tokens, hidden, attention;
    bool ambiguous = false;
};
TensorChoice defaultTensors(const std::vector<TensorInfo>& tensors);
// A .safetensors input's own hidden states and attention maps (defaultTensors) attached to
// `opt` where it names none: the CLI and the studio then merge the same file the same way.
void attachOwnTensors(const std::string& path, InputOptions& opt);

// AR-head weights from a .safetensors file with the seed module's state_dict names
// (`ar_alignment.forward_ar.0.weight` [256, D], ...; the prefix optional), for tokens of D.
std::shared_ptr<const ArHeads> loadArHeads(const std::string& path, i64 d);

// Supplied Gumbel uniforms [N] from .npy/.safetensors.
std::vector<float> loadUniforms(const std::string& path);

} // namespace qmpp
