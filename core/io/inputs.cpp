// Loading a user's input file into token sets, with every shape checked and explained.
#include "qmpp/inputs.h"
#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

namespace qmpp {

InputKind inputKind(const std::string& path) {
    const std::string e = fileExtension(path);
    if (e == ".npy" || e == ".safetensors") return InputKind::Embeddings;
    for (const char* x : {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
        if (e == x) return InputKind::Image;
    for (const char* x : {".mp4", ".avi", ".mkv", ".mov", ".webm"})
        if (e == x) return InputKind::Video;
    return InputKind::Unknown;
}

namespace {

// Token labels: one per line (CRLF accepted), UTF-8. Bounded before anything is read: a labels
// file over kMaxLabelsBytes or a line over kMaxLabelBytes is refused (limits.md).
constexpr std::uintmax_t kMaxLabelsBytes = 64ull << 20;
constexpr std::size_t kMaxLabelBytes = 64 << 10;

// The byte offset of the first invalid UTF-8 sequence in s, or npos.
std::size_t invalidUtf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80         ? 1
                          : (c >> 5) == 6  ? 2
                          : (c >> 4) == 14 ? 3
                          : (c >> 3) == 30 ? 4
                                           : 0;
        if (len == 0 || i + len > s.size()) return i;
        std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b >> 6) != 2) return i;
            cp = (cp << 6) | (b & 0x3f);
        }
        const bool overlong =
            (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return std::string::npos;
}

std::vector<std::string> readLabels(const std::string& path) {
    requireFile(path); // the same messages as everywhere; no pipe or device is opened
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) throw InputError(path + ": cannot determine its size (" + ec.message() + ")");
    if (size > kMaxLabelsBytes)
        throw InputError(path + ": a labels file of " + std::to_string(size) +
                         " bytes is over the limit of 64 MiB");
    const std::vector<std::uint8_t> bytes = readFileBytes(path);
    std::vector<std::string> labels;
    std::size_t begin = 0;
    while (begin < bytes.size()) {
        std::size_t end = begin;
        while (end < bytes.size() && bytes[end] != '\n')
            ++end;
        std::string line(bytes.begin() + std::ptrdiff_t(begin),
                         bytes.begin() + std::ptrdiff_t(end));
        if (!line.empty() && line.back() == '\r') line.pop_back(); // CRLF files
        const std::string where = path + ", line " + std::to_string(labels.size() + 1);
        if (line.size() > kMaxLabelBytes)
            throw InputError(where + ": a label of " + std::to_string(line.size()) +
                             " bytes is over the limit of 64 KiB");
        const std::size_t bad = invalidUtf8(line);
        if (bad != std::string::npos)
            throw InputError(where + ": not valid UTF-8 (byte " + std::to_string(bad + 1) +
                             " of the line); labels files are UTF-8 text");
        labels.push_back(std::move(line));
        begin = end + 1;
    }
    return labels;
}

// A "labels" metadata entry: a JSON array of strings, one per token.
std::vector<std::string> labelsFromMetadata(const TensorFile& f, const std::string& path) {
    const auto it = f.metadata.find("labels");
    if (it == f.metadata.end()) return {};
    const auto j = nlohmann::json::parse(it->second, nullptr, false);
    if (!j.is_array())
        throw InputError(path + ": its \"labels\" metadata is not a JSON array of strings");
    std::vector<std::string> out;
    for (const auto& e : j) {
        if (!e.is_string())
            throw InputError(path + ": its \"labels\" metadata is not a JSON array of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

// Where flat index i lies, as "row r, column c" of the last axis.
std::string positionOf(const NdArray& a, std::size_t i) {
    const std::int64_t cols = a.ndim() > 0 ? std::max<std::int64_t>(a.shape.back(), 1) : 1;
    return "row " + std::to_string(i / std::size_t(cols)) + ", column " +
           std::to_string(i % std::size_t(cols));
}

// The array as float32, refused unless every value is finite and within +-kMaxValueMagnitude
// (a float64 value outside float32's range is named as such, not as the Inf it would become).
std::vector<float> floats(const NdArray& a, const std::string& path, const char* what) {
    if (a.dtype == DType::I32 || a.dtype == DType::I64)
        throw InputError(path + ": " + what + " must be floating point, not " + dtypeName(a.dtype));
    auto refuse = [&](std::size_t i, double v) {
        std::ostringstream os;
        if (!std::isfinite(v)) {
            os << path << ": " << what << " hold a non-finite value (" << v << ") at "
               << positionOf(a, i);
            throw InputError(os.str());
        }
        os << path << ": " << what << " hold " << v << " at " << positionOf(a, i);
        if (std::fabs(v) > double(std::numeric_limits<float>::max()))
            os << ": outside float32's range (the engine computes in float32)";
        else
            os << ": outside +-" << kMaxValueMagnitude
               << " (the range whose products stay finite in float32)";
        throw InputError(os.str());
    };
    if (a.dtype == DType::F64) { // before float32 turns it into Inf
        const double* d = a.as<double>();
        for (std::size_t i = 0, n = std::size_t(a.numel()); i < n; ++i)
            if (!(std::fabs(d[i]) <= kMaxValueMagnitude)) refuse(i, d[i]);
    }
    std::vector<float> v = a.toFloat();
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!(std::fabs(v[i]) <= float(kMaxValueMagnitude))) refuse(i, v[i]);
    return v;
}

} // namespace

Projection loadProjection(const std::string& path, int patch) {
    Projection p;
    p.source = path;
    p.patch = patch;
    NdArray w, b;
    if (fileExtension(path) == ".npy") {
        w = readNpy(path);
    } else if (fileExtension(path) == ".safetensors") {
        TensorFile f = readSafetensors(path);
        std::string wkey;
        for (const auto& [k, a] : f.tensors)
            if (a.ndim() == 4 && k.size() >= 6 && k.compare(k.size() - 6, 6, "weight") == 0) {
                if (!wkey.empty())
                    throw InputError(path + ": several 4-D '*weight' tensors; keep only the patch "
                                            "embedding's");
                wkey = k;
            }
        if (wkey.empty()) throw InputError(path + ": no 4-D '*weight' tensor [D', 3, P, P]");
        w = *f.find(wkey);
        const std::string bkey = wkey.substr(0, wkey.size() - 6) + "bias";
        if (const NdArray* bb = f.find(bkey)) b = *bb;
    } else {
        throw InputError(path + ": a projection must be .npy or .safetensors");
    }
    if (w.ndim() != 4 || w.shape[1] != 3 || w.shape[2] != patch || w.shape[3] != patch)
        throw InputError(path + ": the patch-embedding weight must be [D', 3, " +
                         std::to_string(patch) + ", " + std::to_string(patch) + "], got " +
                         w.shapeString() + " (is --patch right?)");
    p.dOut = w.shape[0];
    if (p.dOut < 1) throw InputError(path + ": the projection has D' = 0");
    p.weight = floats(w, path, "the projection weight");
    if (!b.bytes.empty() || b.ndim() > 0) {
        if (b.ndim() != 1 || b.shape[0] != p.dOut)
            throw InputError(path + ": bias must be [" + std::to_string(p.dOut) + "], got " +
                             b.shapeString());
        p.bias = floats(b, path, "the projection bias");
    } else {
        p.bias.assign(static_cast<std::size_t>(p.dOut), 0.0f);
    }
    return p;
}

std::vector<float> loadUniforms(const std::string& path) {
    const NdArray a = loadArray(path, {}, "uniforms");
    if (a.ndim() != 1)
        throw InputError(path + ": uniforms must be 1-D [N], got " + a.shapeString());
    return floats(a, path, "uniforms");
}

std::vector<TensorInfo> listTensors(const std::string& path) {
    const TensorFile f = readSafetensorsHeader(path);
    std::vector<TensorInfo> out;
    for (const auto& [k, a] : f.tensors)
        out.push_back({k, dtypeName(a.dtype), a.shape});
    return out;
}

namespace {

const TensorInfo* findTensor(const std::vector<TensorInfo>& ts, const std::string& key) {
    for (const auto& t : ts)
        if (t.key == key) return &t;
    return nullptr;
}

} // namespace

bool hiddenFits(const TensorInfo& h, i64 n, i64 d) {
    return h.shape.size() == 3 && h.shape[1] == n && h.shape[2] == d;
}

bool attentionFits(const TensorInfo& a, i64 n) {
    return (a.shape.size() == 3 || a.shape.size() == 4) && a.shape.back() == n &&
           a.shape[a.shape.size() - 2] == n;
}

TensorChoice defaultTensors(const std::vector<TensorInfo>& tensors) {
    TensorChoice c;
    if (tensors.size() == 1)
        c.tokens = tensors[0].key;
    else if (findTensor(tensors, "tokens"))
        c.tokens = "tokens";
    else
        c.ambiguous = true;
    const TensorInfo* t = findTensor(tensors, c.tokens);
    if (!t || t->shape.size() != 2) return c; // extras belong to one token set
    const i64 n = t->shape[0], d = t->shape[1];
    if (const auto* h = findTensor(tensors, "hidden_states"); h && hiddenFits(*h, n, d))
        c.hidden = "hidden_states";
    if (const auto* a = findTensor(tensors, "attentions"); a && attentionFits(*a, n))
        c.attention = "attentions";
    return c;
}

void attachOwnTensors(const std::string& path, InputOptions& opt) {
    if (fileExtension(path) != ".safetensors") return;
    const TensorChoice c = defaultTensors(listTensors(path));
    if (!opt.key.empty() && opt.key != c.tokens) return; // another token tensor: no extras
    if (opt.hidden.empty() && !c.hidden.empty()) {
        opt.hidden = path;
        opt.hiddenKey = c.hidden;
    }
    if (opt.attention.empty() && !c.attention.empty()) {
        opt.attention = path;
        opt.attentionKey = c.attention;
    }
}

LoadedInput tokenSets(const NdArray& a, const std::string& path, i64 batch) {
    LoadedInput in;
    in.kind = InputKind::Embeddings;
    in.sourceShape = a.shape;
    // a zero anywhere in the shape holds no tokens, whatever the other sides claim (a header
    // of (1e17, 0, 5) is 128 bytes): refused before anything is sized from it
    for (std::size_t i = 0; i < a.shape.size(); ++i)
        if (a.shape[i] == 0)
            throw InputError(path + ": holds no tokens (shape " + a.shapeString() +
                             " has a zero side)");
    const std::vector<float> v = floats(a, path, "tokens");
    if (a.ndim() == 2) {
        if (batch > 0)
            throw UsageError("--batch " + std::to_string(batch) + ": " + path +
                             " holds one token set [N, D], not a batch");
        TokenSet t;
        t.n = a.shape[0];
        t.d = a.shape[1];
        t.x = v;
        in.items.push_back(std::move(t));
    } else if (a.ndim() == 3) {
        const i64 b = a.shape[0], n = a.shape[1], d = a.shape[2];
        if (batch >= b)
            throw UsageError("--batch " + std::to_string(batch) + " is out of range: " + path +
                             " holds " + std::to_string(b) + " items");
        for (i64 i = 0; i < b; ++i) {
            if (batch >= 0 && i != batch) continue;
            TokenSet t;
            t.n = n;
            t.d = d;
            t.x.assign(v.begin() + i * n * d, v.begin() + (i + 1) * n * d);
            in.items.push_back(std::move(t));
        }
        in.batched = batch < 0;
        if (b == 0) throw InputError(path + ": the batch is empty (B = 0)");
    } else {
        throw InputError(path + ": tokens must be [N, D] or [B, N, D], got " +
                         std::to_string(a.ndim()) + "-D " + a.shapeString());
    }
    if (in.items[0].n == 0) throw InputError(path + ": no tokens (N = 0)");
    if (in.items[0].d == 0) throw InputError(path + ": tokens have no features (D = 0)");
    return in;
}

void attachHidden(TokenSet& t, const NdArray& h, const std::string& name) {
    if (h.ndim() != 3 || h.shape[1] != t.n || h.shape[2] != t.d)
        throw InputError(name + ": hidden states must be [L, " + std::to_string(t.n) + ", " +
                         std::to_string(t.d) + "] to match the tokens, got " + h.shapeString());
    if (h.shape[0] < 1) throw InputError(name + ": no layers (L = 0)");
    t.hiddenLayers = h.shape[0];
    t.hidden = floats(h, name, "hidden states");
}

void attachAttention(TokenSet& t, const NdArray& m, const std::string& name) {
    const bool ok3 = m.ndim() == 3 && m.shape[1] == t.n && m.shape[2] == t.n;
    const bool ok4 = m.ndim() == 4 && m.shape[2] == t.n && m.shape[3] == t.n;
    if (!ok3 && !ok4)
        throw InputError(name + ": attention maps must be [L, N, N] or [L, H, N, N] with N = " +
                         std::to_string(t.n) + ", got " + m.shapeString());
    if (m.shape[0] < 1 || (ok4 && m.shape[1] < 1)) throw InputError(name + ": no layers or heads");
    t.attnLayers = m.shape[0];
    t.attnHeads = ok4 ? m.shape[1] : 1;
    t.attention = floats(m, name, "attention maps");
}

void attachLabels(std::vector<TokenSet>& items, const std::vector<std::string>& labels,
                  const std::string& source) {
    for (auto& t : items) {
        if (static_cast<i64>(labels.size()) != t.n)
            throw InputError(source + ": " + std::to_string(labels.size()) +
                             " labels for N = " + std::to_string(t.n) + " tokens");
        t.labels = labels;
    }
}

LoadedInput loadInput(const std::string& path, const InputOptions& opt) {
    LoadedInput in;
    std::vector<std::string> metadataLabels;
    std::optional<TensorFile> own; // a .safetensors input, read once for the tokens and its extras
    // hidden states or attention maps: from the input file itself when they are in it
    auto extra = [&](const std::string& file, const std::string& key,
                     const std::string& preferred) {
        return own && file == path ? takeTensor(*own, key, preferred, file)
                                   : loadArray(file, key, preferred);
    };
    in.kind = inputKind(path);
    switch (in.kind) {
    case InputKind::Unknown:
        throw InputError(path + ": unknown input type '" + fileExtension(path) +
                         "' (expected .npy, .safetensors, or an image: png, jpg, bmp, tiff, webp)");
    case InputKind::Video:
        throw UsageError(path + ": a video is merged frame by frame: qmpp run VIDEO --frames A:B "
                                "(the studio plays it)");
    case InputKind::Image: {
        std::optional<Projection> proj;
        if (!opt.projection.empty()) proj = loadProjection(opt.projection, opt.patch);
        ImageInput img;
        in.items.push_back(tokenizeImage(path, opt.patch, proj ? &*proj : nullptr, &img));
        in.sourceShape = {in.items[0].n, in.items[0].d};
        in.image = std::move(img);
        break;
    }
    case InputKind::Embeddings: {
        if (!opt.projection.empty())
            throw UsageError("--projection applies to image inputs, not to " + path);
        NdArray a;
        if (fileExtension(path) == ".safetensors") {
            own = readSafetensors(path);
            a = takeTensor(*own, opt.key, "tokens", path);
            if (opt.labels.empty()) metadataLabels = labelsFromMetadata(*own, path);
        } else {
            a = loadArray(path, opt.key);
        }
        const LoadedInput arr = tokenSets(a, path, opt.batch);
        in.items = arr.items;
        in.batched = arr.batched;
        in.sourceShape = arr.sourceShape;
        break;
    }
    }

    if (!opt.hidden.empty() || !opt.attention.empty()) {
        if (in.items.size() > 1)
            throw UsageError("hidden states and attention maps belong to one token set: pick an "
                             "item of the batch with --batch");
        TokenSet& t = in.items[0];
        if (!opt.hidden.empty())
            attachHidden(t, extra(opt.hidden, opt.hiddenKey, "hidden_states"), opt.hidden);
        if (!opt.attention.empty())
            attachAttention(t, extra(opt.attention, opt.attentionKey, "attentions"), opt.attention);
    }
    if (!opt.labels.empty() || !metadataLabels.empty()) {
        std::vector<std::string> labels = std::move(metadataLabels);
        const std::string source =
            opt.labels.empty() ? path + " (\"labels\" metadata)" : opt.labels;
        if (!opt.labels.empty()) {
            labels = readLabels(opt.labels);
        }
        attachLabels(in.items, labels, source);
    }
    // each loaded token set gets its own revision: device copies of its hidden states are
    // reused while it is re-run (the studio's sliders), never across two loads
    static std::atomic<std::uint64_t> revisions{0};
    for (auto& t : in.items)
        t.revision = ++revisions;
    return in;
}

} // namespace qmpp
