// The causal language model (lm.h): loading, words, and the forward with prefix compression.
#include "qmpp/lm.h"

#include "lmmodel.h"
#include "weights.h"

#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/ops.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <set>

namespace qmpp {

namespace {

const std::string* metaOf(const TensorFile& tf, const char* key) {
    auto it = tf.metadata.find(key);
    return it == tf.metadata.end() ? nullptr : &it->second;
}

} // namespace

const LmConfig& config(const LmModel& m) {
    return m.cfg;
}

bool isLanguageModel(const std::string& path) {
    const std::string low = [&] {
        std::string s = path;
        for (char& ch : s)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return s;
    }();
    if (low.size() < 12 || low.compare(low.size() - 12, 12, ".safetensors") != 0) return false;
    try {
        const TensorFile tf = readSafetensorsHeader(path);
        const std::string* kind = metaOf(tf, "kind");
        return kind && *kind == "causal-lm";
    } catch (const std::exception&) {
        return false;
    }
}

std::shared_ptr<const LmModel> loadLm(const std::string& path) {
    const TensorFile tf = readSafetensors(path);
    WeightReader rd{
        path, tf, "scripts/train-text-model.py --weights-out writes this model's file", {}};
    const auto shapeOf = [&](const std::string& name) -> const NdArray& {
        const NdArray* a = rd.find(name);
        if (!a) rd.fail("missing tensor '" + name + "' (" + rd.missingHint + ")");
        return *a;
    };
    auto m = std::make_shared<LmModel>();
    LmConfig& c = m->cfg;
    const std::string* kind = metaOf(tf, "kind");
    if (!kind || *kind != "causal-lm")
        rd.fail("metadata 'kind' is not 'causal-lm': not a language model file");
    const NdArray& tok = shapeOf("tok.weight");
    const NdArray& pos = shapeOf("pos.weight");
    if (tok.ndim() != 2 || tok.shape[0] < 2 || tok.shape[1] < 1)
        rd.fail("tensor 'tok.weight' has shape " + tok.shapeString() + ", expected [V, D]");
    if (pos.ndim() != 2 || pos.shape[1] != tok.shape[1] || pos.shape[0] < 2)
        rd.fail("tensor 'pos.weight' has shape " + pos.shapeString() + ", expected [context, " +
                std::to_string(tok.shape[1]) + "]");
    c.vocab = tok.shape[0];
    c.dim = tok.shape[1];
    c.context = pos.shape[0];
    const auto has = [&](const std::string& name) {
        return std::any_of(tf.tensors.begin(), tf.tensors.end(),
                           [&](const auto& t) { return t.first == name; });
    };
    while (has("blocks." + std::to_string(c.depth) + ".ln1.weight"))
        ++c.depth;
    if (c.depth == 0) rd.fail("no blocks (missing tensor 'blocks.0.ln1.weight')");
    c.name = metaOf(tf, "name") ? *metaOf(tf, "name") : "language model";
    const std::string* heads = metaOf(tf, "num_heads");
    if (!heads) rd.fail("metadata 'num_heads' is missing");
    try {
        c.heads = std::stoll(*heads);
    } catch (const std::exception&) {
        c.heads = 0;
    }
    if (c.heads < 1 || c.dim % c.heads)
        rd.fail("metadata 'num_heads' = " + *heads +
                " does not divide D = " + std::to_string(c.dim));
    if (const std::string* e = metaOf(tf, "layer_norm_eps")) {
        try {
            c.eps = std::stod(*e);
        } catch (const std::exception&) {
            c.eps = -1;
        }
        if (!(c.eps > 0 && c.eps < 1)) rd.fail("metadata 'layer_norm_eps' = " + *e);
    }
    const std::string* vocab = metaOf(tf, "vocabulary");
    if (!vocab) rd.fail("metadata 'vocabulary' (a JSON list of the words) is missing");
    try {
        const nlohmann::json j = nlohmann::json::parse(*vocab);
        for (const auto& w : j)
            c.vocabulary.push_back(w.get<std::string>());
    } catch (const std::exception&) {
        rd.fail("metadata 'vocabulary' is not a JSON list of strings");
    }
    if (i64(c.vocabulary.size()) != c.vocab)
        rd.fail("metadata 'vocabulary' has " + std::to_string(c.vocabulary.size()) +
                " words, tensor 'tok.weight' " + std::to_string(c.vocab) + " rows");
    c.tokenizer = metaOf(tf, "tokenizer") ? *metaOf(tf, "tokenizer")
                                          : "[A-Za-z]+(?:'[A-Za-z]+)?|[0-9]+|[^\\sA-Za-z0-9]";
    c.lowercase = !metaOf(tf, "lowercase") || *metaOf(tf, "lowercase") != "false";
    try {
        m->words = std::regex(c.tokenizer);
    } catch (const std::regex_error&) {
        rd.fail("metadata 'tokenizer' is not a regular expression: " + c.tokenizer);
    }

    const i64 d = c.dim;
    m->tok = rd.values("tok.weight", {c.vocab, d});
    m->pos = rd.values("pos.weight", {c.context, d});
    m->out.in = d;
    m->out.out = c.vocab;
    m->out.w = packRows(m->tok.data(), c.vocab, d);
    m->out.b.assign(static_cast<std::size_t>(c.vocab), 0.0f);
    for (i64 l = 0; l < c.depth; ++l) {
        const std::string b = "blocks." + std::to_string(l) + ".";
        LmBlock blk;
        blk.ln1 = rd.norm(b + "ln1", d, c.eps);
        blk.ln2 = rd.norm(b + "ln2", d, c.eps);
        blk.qkv = rd.linear(b + "attn.in_proj_weight", b + "attn.in_proj_bias", 3 * d, d);
        blk.proj = rd.linear(b + "attn.out_proj.weight", b + "attn.out_proj.bias", d, d);
        const NdArray& ff = shapeOf(b + "ff.0.weight");
        if (ff.ndim() != 2 || ff.shape[1] != d || ff.shape[0] < 1)
            rd.fail("tensor '" + b + "ff.0.weight' has shape " + ff.shapeString() +
                    ", expected [hidden, " + std::to_string(d) + "]");
        c.hidden = ff.shape[0];
        blk.fc1 = rd.linear(b + "ff.0.weight", b + "ff.0.bias", c.hidden, d);
        blk.fc2 = rd.linear(b + "ff.2.weight", b + "ff.2.bias", d, c.hidden);
        m->blocks.push_back(std::move(blk));
    }
    m->ln = rd.norm("ln", d, c.eps);
    rd.requireAllUsed("not part of this model");
    return m;
}

std::vector<i64> tokenizeLm(const LmModel& m, const std::string& text,
                            std::vector<std::string>* words) {
    std::vector<i64> ids;
    // the vocabulary's index, built per call (a text is tokenized once)
    std::map<std::string, i64> index;
    for (i64 i = 0; i < i64(m.cfg.vocabulary.size()); ++i)
        index.emplace(m.cfg.vocabulary[i], i);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), m.words);
         it != std::sregex_iterator(); ++it) {
        std::string w = it->str();
        if (words) words->push_back(w);
        if (m.cfg.lowercase)
            for (char& ch : w)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto f = index.find(w);
        ids.push_back(f == index.end() ? 0 : f->second);
    }
    return ids;
}

namespace {

// Causal multi-head attention of norm1(x) [t, D] with positions and counts: query i sees key j
// when pos[j] <= pos[i], with ln c_j added once counts differ from 1. out [t, D] before the
// projection; entropy [t] (averaged over heads) when asked; keys averaged over heads [t, dh].
void causalAttention(const LmBlock& blk, const LmConfig& c, const std::vector<float>& x, i64 t,
                     const std::vector<i64>& pos, const std::vector<float>* counts,
                     std::vector<float>& out, std::vector<double>* entropy,
                     std::vector<float>* keysMean) {
    const i64 d = c.dim, nh = c.heads, dh = d / nh;
    std::vector<float> qkv(static_cast<std::size_t>(t * 3 * d));
    linear(blk.qkv, x.data(), t, qkv.data(), Epilogue::Bias, &blk.ln1);
    out.assign(static_cast<std::size_t>(t * d), 0.0f);
    std::vector<double> perHead(entropy ? static_cast<std::size_t>(nh * t) : 0);
    const float scale = 1.0f / std::sqrt(float(dh));
    std::vector<float> row(static_cast<std::size_t>(t));
    std::vector<i64> keys;
    for (i64 h = 0; h < nh; ++h)
        for (i64 i = 0; i < t; ++i) {
            keys.clear();
            for (i64 j = 0; j < t; ++j)
                if (pos[j] <= pos[i]) keys.push_back(j);
            const float* q = &qkv[i * 3 * d + h * dh];
            for (std::size_t a = 0; a < keys.size(); ++a) {
                const float* k = &qkv[keys[a] * 3 * d + d + h * dh];
                float s = 0;
                for (i64 f = 0; f < dh; ++f)
                    s += q[f] * k[f];
                row[a] = s * scale + (counts ? std::log((*counts)[keys[a]]) : 0.0f);
            }
            const double e = softmaxRow(row.data(), i64(keys.size()), entropy != nullptr);
            if (entropy) perHead[std::size_t(h * t + i)] = e;
            float* o = &out[i * d + h * dh];
            for (std::size_t a = 0; a < keys.size(); ++a) {
                const float* v = &qkv[keys[a] * 3 * d + 2 * d + h * dh];
                for (i64 f = 0; f < dh; ++f)
                    o[f] += row[a] * v[f];
            }
        }
    if (entropy) {
        entropy->resize(static_cast<std::size_t>(t));
        meanOverHeads(perHead, nh, t, entropy->data());
    }
    if (keysMean) {
        keysMean->assign(static_cast<std::size_t>(t * dh), 0.0f);
        for (i64 i = 0; i < t; ++i)
            for (i64 h = 0; h < nh; ++h)
                for (i64 f = 0; f < dh; ++f)
                    (*keysMean)[i * dh + f] += qkv[i * 3 * d + d + h * dh + f] / float(nh);
    }
}

} // namespace

void checkLmInput(const LmModel& m, const std::vector<i64>& ids, const PrefixMerge& pm) {
    const LmConfig& c = m.cfg;
    const i64 n = i64(ids.size());
    if (n < 1 || n > c.context)
        throw InputError("language model: " + std::to_string(n) + " tokens; " + c.name +
                         " takes 1.." + std::to_string(c.context));
    if (pm.method != ModelMethod::None) {
        if (pm.prefix < 1 || pm.prefix >= n)
            throw InputError("prefix compression: the prefix T = " + std::to_string(pm.prefix) +
                             " must leave following tokens (1 <= T < " + std::to_string(n) + ")");
        if (pm.groups < 1 || pm.groups > pm.prefix)
            throw InputError("prefix compression: K = " + std::to_string(pm.groups) +
                             " groups must lie in 1..T = " + std::to_string(pm.prefix));
        if (pm.block < 0 || pm.block >= c.depth)
            throw InputError("prefix compression: block " + std::to_string(pm.block) +
                             " lies outside 0.." + std::to_string(c.depth - 1));
        if (pm.method != ModelMethod::QuickMerge && pm.method != ModelMethod::Random)
            throw InputError(std::string("prefix compression: method ") + toString(pm.method) +
                             " is not offered for the language model (quickmerge or random)");
    }
    for (i64 id : ids)
        if (id < 0 || id >= c.vocab)
            throw InputError("language model: token id " + std::to_string(id) + " outside 0.." +
                             std::to_string(c.vocab - 1));
}

std::vector<double> nextWordLosses(const float* logits, const std::vector<i64>& positions,
                                   const std::vector<i64>& ids, i64 vocab) {
    std::vector<double> nll;
    for (std::size_t r = 0; r < positions.size(); ++r) {
        const i64 p = positions[r];
        if (p + 1 >= i64(ids.size())) break;
        const float* z = logits + r * vocab;
        const float mx = *std::max_element(z, z + vocab);
        double s = 0;
        for (i64 v = 0; v < vocab; ++v)
            s += std::exp(double(z[v]) - mx);
        nll.push_back(std::log(s) + mx - z[ids[p + 1]]);
    }
    return nll;
}

MergePlan prefixPlan(const LmConfig& c, const PrefixMerge& pm, i64 item, i64 t,
                     const std::vector<double>& ent, const float* km) {
    const i64 T = pm.prefix, K = pm.groups, dh = c.dim / c.heads;
    const auto offset = static_cast<std::uint64_t>((item * c.depth + pm.block) * c.context);
    const std::vector<float> u = philoxUniforms(T, pm.params.seed, offset);
    MergePlan plan;
    plan.tIn = t;
    plan.tOut = K + (t - T);
    plan.newRow.assign(static_cast<std::size_t>(t), -1);
    plan.weight.assign(static_cast<std::size_t>(t), 1.0f);
    if (pm.method == ModelMethod::QuickMerge) {
        std::vector<float> s(static_cast<std::size_t>(T), 0.0f);
        const double lo = *std::min_element(ent.begin(), ent.begin() + T);
        const double hi = *std::max_element(ent.begin(), ent.begin() + T);
        if (hi > lo)
            for (i64 i = 0; i < T; ++i)
                s[i] = static_cast<float>(1.0 - (ent[i] - lo) / (hi - lo));
        std::vector<float> pi;
        std::vector<double> keys;
        gumbelSoftmax(s, u, pm.params.temperature, pi, keys, pm.params.gumbelScale);
        const std::vector<i64> fg = topK(keys, K);
        const std::vector<float> w = saliencyMass(pi, s, pm.params.epsilon);
        std::vector<i64> labels = clusterSeeded(km, T, dh, w, fg, pm.params.refine);
        // mergeWeighted without features: only its order-preserving relabelling
        std::vector<float> none;
        std::vector<i64> sizes;
        mergeWeighted(nullptr, T, 0, w, labels, K, none, sizes);
        for (i64 i = 0; i < T; ++i) {
            plan.newRow[i] = static_cast<std::int32_t>(labels[i]);
            plan.weight[i] = w[i];
        }
    } else { // random pruning: K survivors in order, the rest dropped
        const std::vector<i64> keep = topK(std::vector<double>(u.begin(), u.end()), K);
        for (std::size_t j = 0; j < keep.size(); ++j)
            plan.newRow[keep[j]] = static_cast<std::int32_t>(j);
    }
    for (i64 i = T; i < t; ++i)
        plan.newRow[i] = static_cast<std::int32_t>(K + i - T);
    return plan;
}

void movePositions(const MergePlan& plan, std::vector<i64>& pos, std::vector<float>& counts) {
    std::vector<i64> np(static_cast<std::size_t>(plan.tOut), -1);
    std::vector<float> nc(static_cast<std::size_t>(plan.tOut), 0.0f);
    for (i64 i = 0; i < plan.tIn; ++i) {
        const i64 g = plan.newRow[i];
        if (g < 0) continue;
        np[g] = std::max(np[g], pos[i]); // the last member's
        nc[g] += counts[i];
    }
    pos.swap(np);
    counts.swap(nc);
}

LmResult lmForward(const LmModel& m, const std::vector<i64>& ids, const PrefixMerge& pm, i64 item) {
    const LmConfig& c = m.cfg;
    const i64 n = i64(ids.size()), d = c.dim;
    const bool merging = pm.method != ModelMethod::None;
    checkLmInput(m, ids, pm);
    LmResult res;
    std::vector<float> x(static_cast<std::size_t>(n * d));
    for (i64 i = 0; i < n; ++i)
        for (i64 f = 0; f < d; ++f)
            x[i * d + f] = m.tok[ids[i] * d + f] + m.pos[i * d + f];
    std::vector<i64> pos(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
        pos[i] = i;
    std::vector<float> counts;
    bool merged = false;
    i64 t = n;
    std::vector<float> att, mlp, km;
    std::vector<double> ent;
    for (i64 l = 0; l < c.depth; ++l) {
        const LmBlock& blk = m.blocks[static_cast<std::size_t>(l)];
        const bool here = merging && l == pm.block;
        const double td = double(t);
        res.flops += 2.0 * td * d * 3 * d + 2.0 * td * td * d + 2.0 * td * d * d;
        causalAttention(blk, c, x, t, pos, merged ? &counts : nullptr, att,
                        here && pm.method == ModelMethod::QuickMerge ? &ent : nullptr,
                        here ? &km : nullptr);
        linear(blk.proj, att.data(), t, x.data(), Epilogue::BiasAddTo);
        if (here) {
            if (counts.empty()) counts.assign(static_cast<std::size_t>(t), 1.0f);
            const MergePlan plan = prefixPlan(c, pm, item, t, ent, km.data());
            std::vector<float> nx;
            applyPlan(plan, x.data(), d, nx);
            x.swap(nx);
            movePositions(plan, pos, counts);
            res.groupOf.assign(plan.newRow.begin(), plan.newRow.begin() + pm.prefix);
            t = plan.tOut;
            merged = true;
        }
        mlp.resize(static_cast<std::size_t>(t * c.hidden));
        res.flops += 4.0 * double(t) * d * double(c.hidden);
        linear(blk.fc1, x.data(), t, mlp.data(), Epilogue::BiasGelu, &blk.ln2);
        linear(blk.fc2, mlp.data(), t, x.data(), Epilogue::BiasAddTo);
    }
    // the rows that are scored: every row unmerged; the following tokens' rows merged
    const i64 first = merging ? pm.groups : 0;
    const i64 rows = t - first;
    res.logits.resize(static_cast<std::size_t>(rows * c.vocab));
    linear(m.out, x.data() + first * d, rows, res.logits.data(), Epilogue::Bias, &m.ln);
    res.flops += 2.0 * double(rows) * d * double(c.vocab);
    res.positions.assign(pos.begin() + first, pos.end());
    res.nll = nextWordLosses(res.logits.data(), res.positions, ids, c.vocab);
    return res;
}

} // namespace qmpp
