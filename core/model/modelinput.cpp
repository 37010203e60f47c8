// Model inputs (modelinput.h): images, folders, pixel tensors and IDX test sets.
#include "qmpp/modelinput.h"

#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

namespace fs = std::filesystem;

namespace qmpp {

bool EvalItems::hasLabels() const {
    return std::any_of(labels.begin(), labels.end(), [](i64 l) { return l >= 0; });
}

namespace {

// PyTorch's source index for align_corners=False
float sourceIndex(float scale, i64 dst, bool cubic) {
    const float s = scale * (float(dst) + 0.5f) - 0.5f;
    return (!cubic && s < 0.0f) ? 0.0f : s;
}

void cubicWeights(float t, float w[4]) {
    const float a = -0.75f;
    auto near = [a](float x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };
    auto far = [a](float x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };
    w[0] = far(t + 1);
    w[1] = near(t);
    w[2] = near(1 - t);
    w[3] = far(2 - t);
}

} // namespace

std::vector<float> resizeImage(const float* src, i64 c, i64 h, i64 w, i64 oh, i64 ow,
                               const std::string& mode) {
    std::vector<float> out(static_cast<std::size_t>(c * oh * ow));
    if (oh == h && ow == w) {
        std::copy(src, src + c * h * w, out.begin());
        return out;
    }
    const float sy = float(h) / float(oh), sx = float(w) / float(ow);
    for (i64 ch = 0; ch < c; ++ch) {
        const float* in = src + ch * h * w;
        float* o = out.data() + ch * oh * ow;
        for (i64 y = 0; y < oh; ++y)
            for (i64 x = 0; x < ow; ++x) {
                float v = 0;
                if (mode == "nearest") {
                    const i64 iy = std::min<i64>(static_cast<i64>(std::floor(y * sy)), h - 1);
                    const i64 ix = std::min<i64>(static_cast<i64>(std::floor(x * sx)), w - 1);
                    v = in[iy * w + ix];
                } else if (mode == "bicubic") {
                    const float fy = sourceIndex(sy, y, true), fx = sourceIndex(sx, x, true);
                    const i64 y0 = static_cast<i64>(std::floor(fy)),
                              x0 = static_cast<i64>(std::floor(fx));
                    float wy[4], wx[4];
                    cubicWeights(fy - float(y0), wy);
                    cubicWeights(fx - float(x0), wx);
                    for (int a = 0; a < 4; ++a) {
                        const i64 yy = std::clamp<i64>(y0 - 1 + a, 0, h - 1);
                        float row = 0;
                        for (int b = 0; b < 4; ++b)
                            row += wx[b] * in[yy * w + std::clamp<i64>(x0 - 1 + b, 0, w - 1)];
                        v += wy[a] * row;
                    }
                } else {
                    const float fy = sourceIndex(sy, y, false), fx = sourceIndex(sx, x, false);
                    const i64 y0 = static_cast<i64>(fy), x0 = static_cast<i64>(fx);
                    const i64 y1 = y0 + (y0 < h - 1 ? 1 : 0), x1 = x0 + (x0 < w - 1 ? 1 : 0);
                    const float ly = fy - float(y0), lx = fx - float(x0);
                    v = (1 - ly) * ((1 - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1]) +
                        ly * ((1 - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1]);
                }
                o[y * ow + x] = v;
            }
    }
    return out;
}

std::vector<float> preprocess(const std::uint8_t* px, i64 h, i64 w, i64 channels,
                              const VitConfig& c) {
    std::vector<float> planar(static_cast<std::size_t>(c.channels * h * w));
    for (i64 i = 0; i < h * w; ++i) {
        const std::uint8_t* p = px + i * channels;
        if (c.channels == 1) {
            planar[i] = channels == 1 ? float(p[0]) / 255.0f
                                      : (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) / 255.0f;
        } else {
            for (i64 ch = 0; ch < c.channels; ++ch)
                planar[ch * h * w + i] =
                    float(p[channels == 1 ? 0 : std::min<i64>(ch, 2)]) / 255.0f;
        }
    }
    std::vector<float> out =
        resizeImage(planar.data(), c.channels, h, w, c.imageSize, c.imageSize, c.interpolation);
    const i64 hw = c.imageSize * c.imageSize;
    for (i64 ch = 0; ch < c.channels; ++ch)
        for (i64 i = 0; i < hw; ++i)
            out[ch * hw + i] = (out[ch * hw + i] - c.mean[ch]) / c.std[ch];
    return out;
}

namespace {

bool isImageFile(const fs::path& p) {
    const std::string e = fileExtension(p.string()); // lower-cased, with its dot
    return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".tif" ||
           e == ".tiff" || e == ".webp";
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    return s;
}

// A subfolder's name as a class: its name (case-insensitive, '/' may be written '_'), or its index.
i64 classOf(const std::string& folder, const VitConfig& c) {
    const std::string f = lower(folder);
    for (i64 i = 0; i < c.classes; ++i) {
        std::string n = lower(c.classNames[i]);
        std::string alt = n;
        std::replace(alt.begin(), alt.end(), '/', '_');
        if (f == n || f == alt) return i;
    }
    if (!f.empty() &&
        std::all_of(f.begin(), f.end(), [](unsigned char ch) { return std::isdigit(ch); })) {
        const long long v = std::stoll(f.substr(0, 12));
        if (v < c.classes) return v;
    }
    return -2; // not a class
}

void addImage(EvalItems& it, const std::string& path, i64 label, const VitConfig& c) {
    int w = 0, h = 0;
    const std::vector<std::uint8_t> rgb = decodeImageRgb(path, w, h);
    const std::vector<float> px = preprocess(rgb.data(), h, w, 3, c);
    it.pixels.insert(it.pixels.end(), px.begin(), px.end());
    it.labels.push_back(label);
    it.names.push_back(path);
    ++it.count;
}

std::string findIdx(const fs::path& dir, const char* kind) {
    for (const char* stem : {"t10k", "test"})
        for (const char* ext : {".gz", ""}) {
            const fs::path p = dir / (std::string(stem) + "-" + kind + ext);
            if (fs::exists(p)) return p.string();
        }
    return {};
}

} // namespace

EvalItems loadEvalItems(const std::string& input, const VitConfig& c, bool dataset, i64 limit) {
    EvalItems it;
    it.source = input;
    const i64 hw = c.imageSize * c.imageSize;
    std::error_code ec;
    if (dataset) {
        if (!fs::is_directory(input, ec))
            throw InputError(input + ": --dataset takes a folder of IDX files "
                                     "(t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz)");
        const std::string imgPath = findIdx(input, "images-idx3-ubyte");
        const std::string labPath = findIdx(input, "labels-idx1-ubyte");
        if (imgPath.empty())
            throw InputError(input + ": no t10k-images-idx3-ubyte[.gz] in the folder");
        const NdArray img = readIdx(imgPath, limit);
        if (img.ndim() != 3)
            throw InputError(imgPath + ": images are [N, H, W]; this file is " + img.shapeString());
        if (c.channels != 1 && c.channels != 3)
            throw InputError(input + ": IDX images are grey; the model takes " +
                             std::to_string(c.channels) + " channels");
        const i64 n = img.shape[0], h = img.shape[1], w = img.shape[2];
        std::vector<std::uint8_t> bytes(static_cast<std::size_t>(h * w));
        it.pixels.reserve(static_cast<std::size_t>(n * c.channels * hw));
        for (i64 i = 0; i < n; ++i) {
            for (i64 j = 0; j < h * w; ++j)
                bytes[j] = static_cast<std::uint8_t>(img.as<std::int32_t>()[i * h * w + j]);
            const std::vector<float> px = preprocess(bytes.data(), h, w, 1, c);
            it.pixels.insert(it.pixels.end(), px.begin(), px.end());
            it.names.push_back(fs::path(imgPath).filename().string() + "[" + std::to_string(i) +
                               "]");
        }
        it.count = n;
        it.labels.assign(static_cast<std::size_t>(n), -1);
        if (!labPath.empty()) {
            const NdArray lab = readIdx(labPath, limit);
            if (lab.ndim() != 1 || lab.shape[0] != n)
                throw InputError(labPath + ": " + lab.shapeString() + " labels for " +
                                 std::to_string(n) + " images");
            for (i64 i = 0; i < n; ++i) {
                const i64 l = lab.as<std::int32_t>()[i];
                if (l >= c.classes)
                    throw InputError(labPath + ": label " + std::to_string(l) + " of item " +
                                     std::to_string(i) + " is not one of the model's " +
                                     std::to_string(c.classes) + " classes");
                it.labels[i] = l;
            }
        }
        return it;
    }
    if (fs::is_directory(input, ec)) {
        std::vector<fs::path> files, dirs;
        for (const auto& e : fs::directory_iterator(input, ec)) {
            if (e.is_directory())
                dirs.push_back(e.path());
            else if (isImageFile(e.path()))
                files.push_back(e.path());
        }
        std::sort(files.begin(), files.end());
        std::sort(dirs.begin(), dirs.end());
        for (const auto& f : files) {
            if (limit > 0 && it.count >= limit) break;
            addImage(it, f.string(), -1, c);
        }
        for (const auto& d : dirs) {
            const i64 cls = classOf(d.filename().string(), c);
            if (cls == -2)
                throw InputError(d.string() + ": the subfolder's name is not one of the model's "
                                              "class names or indices (labels come from them)");
            std::vector<fs::path> inner;
            for (const auto& e : fs::directory_iterator(d, ec))
                if (!e.is_directory() && isImageFile(e.path())) inner.push_back(e.path());
            std::sort(inner.begin(), inner.end());
            for (const auto& f : inner) {
                if (limit > 0 && it.count >= limit) break;
                addImage(it, f.string(), cls, c);
            }
        }
        if (it.count == 0) throw InputError(input + ": the folder holds no images");
        return it;
    }
    requireFile(input);
    if (fileExtension(input) == ".npy") {
        const NdArray a = readNpy(input);
        if (a.ndim() != 4 || a.shape[1] != c.channels || a.shape[2] != c.imageSize ||
            a.shape[3] != c.imageSize)
            throw InputError(input + ": pixels " + a.shapeString() + "; the model takes [B, " +
                             std::to_string(c.channels) + ", " + std::to_string(c.imageSize) +
                             ", " + std::to_string(c.imageSize) + "], already normalized");
        if (a.dtype != DType::F32 && a.dtype != DType::F64 && a.dtype != DType::F16)
            throw InputError(input + ": pixels must be floating point, not " + dtypeName(a.dtype));
        it.pixels = a.toFloat();
        for (float v : it.pixels)
            if (!std::isfinite(v)) throw InputError(input + ": the pixels hold a NaN or infinity");
        it.count = a.shape[0];
        if (limit > 0 && it.count > limit) {
            it.count = limit;
            it.pixels.resize(static_cast<std::size_t>(limit * c.channels * hw));
        }
        it.labels.assign(static_cast<std::size_t>(it.count), -1);
        for (i64 i = 0; i < it.count; ++i)
            it.names.push_back(input + "[" + std::to_string(i) + "]");
        return it;
    }
    addImage(it, input, -1, c);
    return it;
}

} // namespace qmpp
