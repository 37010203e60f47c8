// Pixel tokens from decoded frames: patches (images) and tubelets (video), plain C++ so the
// layout is tested on every build.
#include "qmpp/error.h"
#include "qmpp/inputs.h"

namespace qmpp {

TokenSet tokenizeFrames(const std::vector<const ImageInput*>& frames, int tubelet,
                        const Projection* proj) {
    if (tubelet < 1) throw UsageError("the tubelet length T must be at least 1");
    if (frames.empty() || frames.size() % std::size_t(tubelet) != 0)
        throw UsageError("tokenizeFrames: the frame count must be a positive multiple of T");
    const ImageInput& f0 = *frames.front();
    const int P = f0.patch, W = f0.width, H = f0.height, T = tubelet;
    if (P < 1 || W < P || H < P || W % P != 0 || H % P != 0)
        throw UsageError(
            "tokenizeFrames: frame sides must be positive multiples of the patch size");
    for (const ImageInput* f : frames)
        if (f->width != W || f->height != H || f->patch != P ||
            f->rgb.size() != std::size_t(W) * H * 3)
            throw InputError(f->path + ": frames of one clip must share their size");
    if (proj && T != 1)
        throw UsageError("a patch-embedding projection applies to single frames (T = 1), not to "
                         "tubelets of " +
                         std::to_string(T) + " frames");

    TokenSet t;
    t.gridRows = H / P;
    t.gridCols = W / P;
    t.gridFrames = static_cast<int>(frames.size()) / T;
    const i64 perSlot = i64(t.gridRows) * t.gridCols;
    t.n = perSlot * t.gridFrames;
    const i64 raw = 3 * i64(T) * P * P;
    std::vector<float> pix(static_cast<std::size_t>(t.n * raw));
    for (int s = 0; s < t.gridFrames; ++s)
        for (int tau = 0; tau < T; ++tau) {
            const std::uint8_t* rgb = frames[std::size_t(s) * T + tau]->rgb.data();
            for (int r = 0; r < t.gridRows; ++r)
                for (int c = 0; c < t.gridCols; ++c) {
                    float* tok = &pix[((s * perSlot) + i64(r) * t.gridCols + c) * raw];
                    for (int y = 0; y < P; ++y) {
                        const std::uint8_t* row = rgb + (std::size_t(r) * P + y) * W * 3;
                        for (int x = 0; x < P; ++x)
                            for (int ch = 0; ch < 3; ++ch) // channel-major (3, T, P, P)
                                tok[((i64(ch) * T + tau) * P + y) * P + x] =
                                    (row[(c * P + x) * 3 + ch] / 255.0f - kImageNetMean[ch]) /
                                    kImageNetStd[ch];
                    }
                }
        }
    if (proj) {
        if (proj->patch != P)
            throw UsageError(proj->source + ": the projection is for patch size " +
                             std::to_string(proj->patch) + ", not " + std::to_string(P));
        t.d = proj->dOut;
        t.x.assign(static_cast<std::size_t>(t.n * t.d), 0.0f);
        for (i64 i = 0; i < t.n; ++i)
            for (i64 o = 0; o < t.d; ++o) {
                double s = proj->bias[o];
                const float* wrow = &proj->weight[o * raw];
                const float* p = &pix[i * raw];
                for (i64 j = 0; j < raw; ++j)
                    s += double(wrow[j]) * p[j];
                t.x[i * t.d + o] = static_cast<float>(s);
            }
    } else {
        t.d = raw;
        t.x = std::move(pix);
    }
    return t;
}

} // namespace qmpp
