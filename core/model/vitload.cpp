// loadVit (vit.h): a timm-layout ViT from .safetensors, every tensor and metadata field checked.
#include "weights.h"

#include "qmpp/error.h"
#include "qmpp/io.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <set>

namespace qmpp {

namespace {

const std::string* meta(const TensorFile& tf, const char* key) {
    auto it = tf.metadata.find(key);
    return it == tf.metadata.end() ? nullptr : &it->second;
}

std::vector<float> floatList(const std::string& file, const char* key, const std::string& text,
                             i64 channels) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception&) {
        throw InputError(file + ": metadata '" + key + "' is not a JSON list of numbers: " + text);
    }
    if (j.is_number()) j = nlohmann::json::array({j});
    if (!j.is_array() || (i64(j.size()) != channels && j.size() != 1))
        throw InputError(file + ": metadata '" + key + "' needs " + std::to_string(channels) +
                         " numbers (one per channel), got " + text);
    std::vector<float> v;
    for (const auto& e : j) {
        if (!e.is_number())
            throw InputError(file + ": metadata '" + key + "' holds a non-number: " + text);
        v.push_back(e.get<float>());
    }
    if (v.size() == 1) v.assign(static_cast<std::size_t>(channels), v[0]);
    return v;
}

i64 positiveInt(const std::string& file, const char* key, const std::string& text) {
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != text.size() || v < 1 || v > (1 << 20))
        throw InputError(file + ": metadata '" + key + "' must be a positive whole number, got '" +
                         text + "'");
    return v;
}

} // namespace

const VitConfig& config(const VitModel& m) {
    return m.cfg;
}

std::shared_ptr<const VitModel> loadVit(const std::string& path, i64 heads) {
    TensorFile tf = readSafetensors(path);
    WeightReader rd{path,
                    tf,
                    "a timm VisionTransformer state_dict is expected; scripts/convert-timm.py "
                    "converts one",
                    {}};
    auto m = std::make_shared<VitModel>();
    VitConfig& c = m->cfg;

    const NdArray& pe = rd.get("patch_embed.proj.weight");
    if (pe.ndim() != 4 || pe.shape[2] != pe.shape[3] || pe.shape[0] < 1 || pe.shape[1] < 1 ||
        pe.shape[2] < 1)
        rd.fail("tensor 'patch_embed.proj.weight' has shape " + pe.shapeString() +
                ", expected [D, C, P, P]");
    c.dim = pe.shape[0];
    c.channels = pe.shape[1];
    c.patch = pe.shape[2];
    c.weightsDtype = dtypeName(pe.dtype);
    const NdArray& posA = rd.get("pos_embed");
    if (posA.ndim() != 3 || posA.shape[0] != 1 || posA.shape[2] != c.dim || posA.shape[1] < 2)
        rd.fail("tensor 'pos_embed' has shape " + posA.shapeString() + ", expected [1, 1 + N, " +
                std::to_string(c.dim) + "] (a class token and a square grid of N patches)");
    c.patches = posA.shape[1] - 1;
    c.grid = static_cast<i64>(std::llround(std::sqrt(double(c.patches))));
    if (c.grid * c.grid != c.patches)
        rd.fail("tensor 'pos_embed' holds " + std::to_string(c.patches) +
                " patch positions, not a square grid");
    c.imageSize = c.grid * c.patch;
    while (true) {
        bool found = false;
        const std::string pre = "blocks." + std::to_string(c.depth) + ".";
        for (const auto& t : tf.tensors)
            if (t.first.compare(0, pre.size(), pre) == 0) found = true;
        if (!found) break;
        ++c.depth;
    }
    if (c.depth == 0) rd.fail("no transformer blocks (tensors 'blocks.0.*' are missing)");
    const NdArray& fc1 = rd.get("blocks.0.mlp.fc1.weight");
    if (fc1.ndim() != 2 || fc1.shape[1] != c.dim || fc1.shape[0] < 1)
        rd.fail("tensor 'blocks.0.mlp.fc1.weight' has shape " + fc1.shapeString() +
                ", expected [hidden, " + std::to_string(c.dim) + "]");
    c.hidden = fc1.shape[0];
    const NdArray& hw = rd.get("head.weight");
    if (hw.ndim() != 2 || hw.shape[1] != c.dim || hw.shape[0] < 1)
        rd.fail("tensor 'head.weight' has shape " + hw.shapeString() + ", expected [classes, " +
                std::to_string(c.dim) + "]");
    c.classes = hw.shape[0];

    // metadata
    if (const std::string* s = meta(tf, "name")) c.name = *s;
    if (c.name.empty()) {
        const auto slash = path.find_last_of('/');
        c.name = path.substr(slash == std::string::npos ? 0 : slash + 1);
        const auto dot = c.name.rfind('.');
        if (dot != std::string::npos && dot > 0) c.name.resize(dot);
    }
    if (heads > 0)
        c.heads = heads;
    else if (const std::string* s = meta(tf, "num_heads"))
        c.heads = positiveInt(path, "num_heads", *s);
    else
        rd.fail("the metadata does not say num_heads; pass --heads H");
    if (c.dim % c.heads != 0)
        rd.fail(std::to_string(c.heads) + " heads do not divide D = " + std::to_string(c.dim) +
                " (tensor 'patch_embed.proj.weight')");
    if (const std::string* s = meta(tf, "channels"))
        if (positiveInt(path, "channels", *s) != c.channels)
            rd.fail("metadata 'channels' is " + *s + " but 'patch_embed.proj.weight' takes " +
                    std::to_string(c.channels));
    if (const std::string* s = meta(tf, "input_size"))
        if (positiveInt(path, "input_size", *s) != c.imageSize)
            rd.fail("metadata 'input_size' is " + *s + " but 'pos_embed' and the patch give " +
                    std::to_string(c.imageSize));
    c.mean.assign(static_cast<std::size_t>(c.channels), 0.5f);
    c.std.assign(static_cast<std::size_t>(c.channels), 0.5f);
    if (const std::string* s = meta(tf, "mean")) c.mean = floatList(path, "mean", *s, c.channels);
    if (const std::string* s = meta(tf, "std")) c.std = floatList(path, "std", *s, c.channels);
    for (float v : c.std)
        if (!(v > 0)) rd.fail("metadata 'std' must be positive");
    if (const std::string* s = meta(tf, "interpolation")) {
        if (*s != "bilinear" && *s != "bicubic" && *s != "nearest")
            rd.fail("metadata 'interpolation' is '" + *s + "' (bilinear, bicubic or nearest)");
        c.interpolation = *s;
    }
    if (const std::string* s = meta(tf, "class_names")) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(*s);
        } catch (const std::exception&) {
            rd.fail("metadata 'class_names' is not a JSON list of strings");
        }
        if (!j.is_array() || i64(j.size()) != c.classes)
            rd.fail("metadata 'class_names' needs " + std::to_string(c.classes) +
                    " names (the rows of 'head.weight')");
        for (const auto& e : j) {
            if (!e.is_string()) rd.fail("metadata 'class_names' holds a non-string");
            c.classNames.push_back(e.get<std::string>());
        }
    } else {
        for (i64 i = 0; i < c.classes; ++i)
            c.classNames.push_back("class " + std::to_string(i));
    }

    // weights
    const i64 d = c.dim, cpp = c.channels * c.patch * c.patch;
    {
        std::vector<float> w =
            rd.values("patch_embed.proj.weight", {d, c.channels, c.patch, c.patch});
        m->patch.in = cpp;
        m->patch.out = d;
        m->patch.w = packRows(w.data(), d, cpp);
        m->patch.b = rd.values("patch_embed.proj.bias", {d});
    }
    m->cls = rd.values("cls_token", {1, 1, d});
    m->pos = rd.values("pos_embed", {1, 1 + c.patches, d});
    for (i64 i = 0; i < c.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        VitBlock blk;
        blk.norm1 = rd.norm(b + "norm1", d);
        blk.qkv = rd.linear(b + "attn.qkv", 3 * d, d);
        blk.proj = rd.linear(b + "attn.proj", d, d);
        blk.norm2 = rd.norm(b + "norm2", d);
        blk.fc1 = rd.linear(b + "mlp.fc1", c.hidden, d);
        blk.fc2 = rd.linear(b + "mlp.fc2", d, c.hidden);
        m->blocks.push_back(std::move(blk));
    }
    m->norm = rd.norm("norm", d);
    m->head = rd.linear("head", c.classes, d);

    for (const auto& t : tf.tensors)
        if (!rd.used.count(t.first))
            rd.fail(
                "tensor '" + t.first +
                "' is not part of a plain timm VisionTransformer "
                "(class token, no register tokens, no pre-norm, no layer scale, no distillation "
                "token)");
    return m;
}

} // namespace qmpp
