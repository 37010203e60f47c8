// The merge hook and the schedules (hook.h, vit.h).
#include "qmpp/hook.h"

#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace qmpp {

const char* toString(ModelMethod m) {
    switch (m) {
    case ModelMethod::None:
        return "none";
    case ModelMethod::QuickMerge:
        return "quickmerge";
    case ModelMethod::ToMe:
        return "tome";
    case ModelMethod::TopK:
        return "topk";
    case ModelMethod::Random:
        return "random";
    }
    return "?";
}

bool parse(const std::string& s, ModelMethod& out) {
    for (ModelMethod m : {ModelMethod::None, ModelMethod::QuickMerge, ModelMethod::ToMe,
                          ModelMethod::TopK, ModelMethod::Random})
        if (s == toString(m)) {
            out = m;
            return true;
        }
    return false;
}

bool isRandom(ModelMethod m) {
    return m == ModelMethod::QuickMerge || m == ModelMethod::Random;
}

std::vector<i64> Schedule::perBlock(i64 depth) const {
    std::vector<i64> out(static_cast<std::size_t>(depth), 0);
    switch (kind) {
    case Kind::None:
    case Kind::Budget:
        break;
    case Kind::Constant:
    case Kind::Inflect: {
        // tome/utils.py parse_r
        const double inflect = kind == Kind::Inflect ? inflection : 0.0;
        const i64 minVal = static_cast<i64>(double(r) * (1.0 - inflect));
        const i64 maxVal = 2 * r - minVal;
        const double step = depth > 1 ? double(maxVal - minVal) / double(depth - 1) : 0.0;
        for (i64 i = 0; i < depth; ++i)
            out[i] = static_cast<i64>(double(minVal) + step * double(i)); // int() truncates
        break;
    }
    case Kind::List:
        for (std::size_t i = 0; i < list.size() && i < out.size(); ++i)
            out[i] = list[i];
        break;
    }
    for (i64& v : out)
        v = std::max<i64>(v, 0);
    return out;
}

std::string Schedule::describe() const {
    std::ostringstream s;
    switch (kind) {
    case Kind::None:
        return "none";
    case Kind::Constant:
        s << "r=" << r;
        break;
    case Kind::Inflect:
        s << "r=" << r << ",inflect=" << inflection;
        break;
    case Kind::List:
        s << "list ";
        for (std::size_t i = 0; i < list.size(); ++i)
            s << (i ? "," : "") << list[i];
        break;
    case Kind::Budget:
        s << "budget " << budget << " at block " << atBlock;
        break;
    }
    return s.str();
}

std::vector<std::uint64_t> parseSeeds(const std::string& s) {
    std::vector<std::uint64_t> out;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, ',')) {
        if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
            part.size() > 19)
            throw UsageError("--seeds takes comma-separated whole numbers, got '" + s + "'");
        out.push_back(std::stoull(part));
    }
    if (out.empty()) throw UsageError("--seeds needs at least one seed");
    return out;
}

Schedule scheduleFrom(const std::string& r, const std::string& sched, const std::string& list,
                      double budget, i64 atBlock, i64 depth) {
    const int given = !r.empty() + !sched.empty() + !list.empty() + (budget > 0);
    if (given > 1) throw UsageError("give one of --r, --schedule, --list and --budget");
    auto whole = [](const std::string& v, const char* opt) {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9)
            throw UsageError(std::string(opt) + " takes whole numbers >= 0, got '" + v + "'");
        return static_cast<i64>(std::stoll(v));
    };
    if (!r.empty()) return constantSchedule(whole(r, "--r"));
    if (!sched.empty()) {
        const auto comma = sched.find(',');
        if (comma == std::string::npos)
            throw UsageError("--schedule takes r,inflection (ToMe's schedule), e.g. 8,-0.5");
        double infl = 0;
        try {
            std::size_t used = 0;
            infl = std::stod(sched.substr(comma + 1), &used);
            if (used != sched.size() - comma - 1) throw std::invalid_argument("tail");
        } catch (const std::exception&) {
            throw UsageError("--schedule: the inflection must be a number, got '" + sched + "'");
        }
        if (!std::isfinite(infl) || infl < -1 || infl > 1)
            throw UsageError("--schedule: the inflection lies in [-1, 1]");
        return inflectSchedule(whole(sched.substr(0, comma), "--schedule"), infl);
    }
    if (!list.empty()) {
        std::vector<i64> v;
        std::stringstream in(list);
        std::string part;
        while (std::getline(in, part, ','))
            v.push_back(whole(part, "--list"));
        if (i64(v.size()) > depth)
            throw UsageError("--list gives " + std::to_string(v.size()) +
                             " values for a model of " + std::to_string(depth) + " blocks");
        return listSchedule(v);
    }
    if (budget > 0) {
        if (budget > 1) throw UsageError("--budget lies in (0, 1]");
        if (atBlock < 0 || atBlock >= depth)
            throw UsageError("--at-block lies in 0.." + std::to_string(depth - 1));
        return budgetSchedule(budget, atBlock);
    }
    return Schedule{};
}

void validate(const HookParams& hp) {
    if (!(hp.temperature > 0) || !std::isfinite(hp.temperature))
        throw UsageError("--temperature must be positive");
    if (!(hp.epsilon >= 0 && hp.epsilon <= 1)) throw UsageError("--epsilon lies in [0, 1]");
    if (!(hp.gumbelScale >= 0) || !std::isfinite(hp.gumbelScale))
        throw UsageError("--gumbel-scale must be >= 0");
    if (hp.refine < 0 || hp.refine > 100) throw UsageError("--refine lies in 0..100");
}

Schedule constantSchedule(i64 r) {
    Schedule s;
    s.kind = Schedule::Kind::Constant;
    s.r = r;
    return s;
}
Schedule inflectSchedule(i64 r, double inflection) {
    Schedule s;
    s.kind = Schedule::Kind::Inflect;
    s.r = r;
    s.inflection = inflection;
    return s;
}
Schedule listSchedule(std::vector<i64> r) {
    Schedule s;
    s.kind = Schedule::Kind::List;
    s.list = std::move(r);
    return s;
}
Schedule budgetSchedule(double budget, i64 atBlock) {
    Schedule s;
    s.kind = Schedule::Kind::Budget;
    s.budget = budget;
    s.atBlock = atBlock;
    return s;
}

HookNeeds hookNeeds(ModelMethod m, i64 r) {
    HookNeeds n;
    n.entropy = r > 0 && m == ModelMethod::QuickMerge;
    n.clsAttn = r > 0 && m == ModelMethod::TopK;
    return n;
}

HookState::HookState(const VitConfig& c, const HookParams& hp, i64 item, bool sources)
    : m_cfg(c), m_hp(hp), m_item(item), m_plan(hp.schedule.perBlock(c.depth)),
      m_tokens(c.patches + 1), m_sources(sources) {
    m_counts.assign(static_cast<std::size_t>(m_tokens), 1.0f);
    if (sources) {
        m_owner.resize(static_cast<std::size_t>(c.patches));
        for (i64 p = 0; p < c.patches; ++p)
            m_owner[p] = static_cast<std::int32_t>(p + 1);
    }
}

i64 HookState::mergeCount(i64 block) const {
    if (m_hp.method == ModelMethod::None) return 0;
    const i64 nl = m_tokens - 1; // non-class tokens
    i64 r = m_plan[static_cast<std::size_t>(block)];
    if (m_hp.schedule.kind == Schedule::Kind::Budget && block == m_hp.schedule.atBlock) {
        const i64 k = std::max<i64>(1, static_cast<i64>(std::floor(m_hp.schedule.budget * nl)));
        r = nl - std::min(k, nl);
    }
    if (m_hp.method == ModelMethod::ToMe) return std::max<i64>(0, std::min(r, (m_tokens - 1) / 2));
    return std::max<i64>(0, std::min(r, nl - 1));
}

std::vector<float> HookState::blockUniforms(i64 block, i64 n) const {
    // SPEC: seed S at offset ((item * depth) + block) * N, so items and blocks never share noise
    const auto offset = static_cast<std::uint64_t>((m_item * m_cfg.depth + block) * m_cfg.patches);
    return philoxUniforms(n, m_hp.seed, offset);
}

void HookState::remap(const std::vector<std::int32_t>& newRow) {
    if (!m_sources) return;
    for (std::int32_t& o : m_owner)
        if (o >= 0) o = newRow[static_cast<std::size_t>(o)];
}

void meanOverHeads(const std::vector<double>& perHead, i64 nh, i64 t, double* out) {
    for (i64 i = 0; i < t; ++i) {
        double sum = 0;
        for (i64 hd = 0; hd < nh; ++hd)
            sum += perHead[std::size_t(hd * t + i)];
        out[i] = sum / double(nh);
    }
}

double blockFlops(const VitConfig& c, i64 tIn, i64 tOut) {
    const double td = double(tIn), dd = double(c.dim);
    return 2.0 * td * dd * 3 * dd + 4.0 * td * td * dd + 2.0 * td * dd * dd +
           4.0 * double(tOut) * dd * double(c.hidden);
}

MergePlan HookState::apply(i64 block, i64 r, std::vector<float>& x, const std::vector<float>& qkv,
                           const std::vector<double>& entropy, const std::vector<double>& clsAttn) {
    const i64 t = m_tokens, d = m_cfg.dim, nh = m_cfg.heads, dh = d / nh;
    // ToMe's metric: the keys averaged over heads [T, dh]
    std::vector<float> km(static_cast<std::size_t>(t * dh), 0.0f);
    for (i64 i = 0; i < t; ++i)
        for (i64 hd = 0; hd < nh; ++hd)
            for (i64 f = 0; f < dh; ++f)
                km[i * dh + f] += qkv[i * 3 * d + d + hd * dh + f];
    for (float& v : km)
        v /= float(nh);
    const MergePlan p = plan(block, r, km.data(), entropy, clsAttn);
    std::vector<float> nx;
    applyPlan(p, x.data(), d, nx);
    x.swap(nx);
    commit(p);
    return p;
}

std::vector<float> entropySaliency(const std::vector<double>& entropy) {
    const i64 nl = i64(entropy.size()) - 1;
    std::vector<float> s(static_cast<std::size_t>(std::max<i64>(nl, 0)), 0.0f);
    if (nl <= 0) return s;
    const double lo = *std::min_element(entropy.begin() + 1, entropy.end());
    const double hi = *std::max_element(entropy.begin() + 1, entropy.end());
    if (hi > lo)
        for (i64 i = 0; i < nl; ++i)
            s[i] = static_cast<float>(1.0 - (entropy[i + 1] - lo) / (hi - lo));
    return s;
}

MergePlan HookState::plan(i64 block, i64 r, const float* km, const std::vector<double>& entropy,
                          const std::vector<double>& clsAttn) const {
    const i64 t = m_tokens, dh = m_cfg.dim / m_cfg.heads, nl = t - 1;
    const i64 k = nl - r; // non-class tokens after the merge
    MergePlan p;
    p.tIn = t;
    p.tOut = k + 1;
    p.newRow.assign(static_cast<std::size_t>(t), -1);
    p.weight.assign(m_counts.begin(), m_counts.end()); // size-weighted (ToMe, pruning)
    p.newRow[0] = 0;                                   // the class token stays first
    switch (m_hp.method) {
    case ModelMethod::None:
        for (i64 i = 0; i < t; ++i)
            p.newRow[i] = static_cast<std::int32_t>(i);
        p.tOut = t;
        break;
    case ModelMethod::ToMe: {
        std::vector<float> nc(static_cast<std::size_t>(t - r));
        tomeRound(km, dh, nullptr, 0, m_merged ? m_counts.data() : nullptr, t, r, true, nullptr,
                  nc.data(), p.newRow.data());
        break;
    }
    case ModelMethod::QuickMerge: {
        const std::vector<float> s = entropySaliency(entropy);
        const std::vector<float> u = blockUniforms(block, nl);
        std::vector<float> pi;
        std::vector<double> keys;
        gumbelSoftmax(s, u, m_hp.temperature, pi, keys, m_hp.gumbelScale);
        const std::vector<i64> fg = topK(keys, k);
        std::vector<float> w = saliencyMass(pi, s, m_hp.epsilon);
        for (i64 i = 0; i < nl; ++i)
            w[i] *= m_counts[i + 1];
        std::vector<i64> labels = clusterSeeded(km + dh, nl, dh, w, fg, m_hp.refine);
        // mergeWeighted without features: only its order-preserving relabelling
        std::vector<float> merged;
        std::vector<i64> sizes;
        mergeWeighted(nullptr, nl, 0, w, labels, k, merged, sizes);
        for (i64 i = 0; i < nl; ++i) {
            p.newRow[i + 1] = static_cast<std::int32_t>(labels[i] + 1);
            p.weight[i + 1] = w[i];
        }
        break;
    }
    case ModelMethod::TopK:
    case ModelMethod::Random: {
        std::vector<double> score(static_cast<std::size_t>(nl));
        if (m_hp.method == ModelMethod::TopK) {
            for (i64 i = 0; i < nl; ++i)
                score[i] = clsAttn[i + 1];
        } else {
            const std::vector<float> u = blockUniforms(block, nl);
            for (i64 i = 0; i < nl; ++i)
                score[i] = u[i];
        }
        const std::vector<i64> keep = topK(score, k); // ascending: original order kept
        for (std::size_t j = 0; j < keep.size(); ++j)
            p.newRow[keep[j] + 1] = static_cast<std::int32_t>(j + 1);
        break;
    }
    }
    return p;
}

void HookState::commit(const MergePlan& p) {
    std::vector<float> nc(static_cast<std::size_t>(p.tOut), 0.0f);
    for (i64 i = 0; i < p.tIn; ++i)
        if (p.newRow[i] >= 0) nc[p.newRow[i]] += m_counts[i];
    m_counts.swap(nc);
    m_tokens = p.tOut;
    m_merged = true;
    remap(p.newRow);
}

} // namespace qmpp
