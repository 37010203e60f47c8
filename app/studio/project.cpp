#include "project.h"

#include "qmpp/report.h"

#include <QFile>
#include <QFileInfo>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace studio {

namespace {

using json = nlohmann::ordered_json;
constexpr const char* kFormat = "qmpp-studio-project";
constexpr int kVersion = 1;

json paramsToJson(const qmpp::MergeParams& p) {
    json j = qmpp::paramsJson(p, p.k);
    j.erase("uniforms"); // always the seed's Philox uniforms in the studio
    return j;
}

struct Reader {
    std::string file;
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error(file + ": " + what);
    }
    const json& at(const json& j, const char* key, const std::string& where) const {
        if (!j.is_object() || !j.contains(key)) fail("no \"" + std::string(key) + "\" in " + where);
        return j.at(key);
    }
    double number(const json& j, const char* key, const std::string& where) const {
        const json& v = at(j, key, where);
        if (!v.is_number()) fail(where + "." + key + " is not a number");
        return v.get<double>();
    }
    long long integer(const json& j, const char* key, const std::string& where) const {
        const json& v = at(j, key, where);
        if (!v.is_number_integer()) fail(where + "." + key + " is not a whole number");
        return v.get<long long>();
    }
    std::string text(const json& j, const char* key, const std::string& where,
                     bool optional = false) const {
        if (optional && (!j.contains(key) || j.at(key).is_null())) return {};
        const json& v = at(j, key, where);
        if (!v.is_string()) fail(where + "." + key + " is not a string");
        return v.get<std::string>();
    }
    template <class E> E name(const json& j, const char* key, const std::string& where) const {
        E e{};
        const std::string s = text(j, key, where);
        if (!qmpp::parse(s, e)) fail(where + "." + key + ": unknown \"" + s + "\"");
        return e;
    }
    qmpp::MergeParams params(const json& j, const std::string& where) const {
        qmpp::MergeParams p;
        const std::string from = text(j, "k_from", where);
        if (from == "tokens")
            p.k = integer(j, "k", where);
        else if (from == "budget")
            p.budget = number(j, "budget", where);
        else
            fail(where + ".k_from must be \"budget\" or \"tokens\"");
        p.temperature = number(j, "temperature", where);
        p.epsilon = number(j, "epsilon", where);
        p.gamma = number(j, "gamma", where);
        p.alpha = number(j, "alpha", where);
        p.layers = int(integer(j, "layers", where));
        p.refine = int(integer(j, "refine", where));
        const long long seed = integer(j, "seed", where);
        if (seed < 0) fail(where + ".seed is negative");
        p.seed = std::uint64_t(seed);
        p.method = name<qmpp::Method>(j, "method", where);
        p.cluster = name<qmpp::ClusterMethod>(j, "cluster", where);
        p.backend = name<qmpp::BackendKind>(j, "backend", where);
        p.precision = name<qmpp::Precision>(j, "precision", where);
        return p;
    }
};

} // namespace

QByteArray projectJson(const ProjectState& s) {
    json j;
    j["format"] = kFormat;
    j["version"] = kVersion;
    const auto& o = s.options;
    j["input"] = {{"path", s.input.toStdString()},
                  {"patch", o.patch},
                  {"key", o.key},
                  {"batch", o.batch},
                  {"hidden", o.hidden},
                  {"hidden_key", o.hiddenKey},
                  {"attention", o.attention},
                  {"attention_key", o.attentionKey},
                  {"labels", o.labels},
                  {"projection", o.projection}};
    j["params"] = paramsToJson(s.params);
    j["overlays"] = json::array();
    for (const auto& [on, opacity] : s.overlays)
        j["overlays"].push_back({{"on", on}, {"opacity", opacity}});
    j["page"] = s.page.toStdString();
    j["pin"] = s.pin ? paramsToJson(*s.pin) : json(nullptr);
    return QByteArray::fromStdString(j.dump(2) + "\n");
}

ProjectState readProject(const QString& path) {
    const Reader r{path.toStdString()};
    if (!QFileInfo(path).isFile()) r.fail("not a regular file"); // a FIFO would block
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        r.fail("cannot be opened (" + f.errorString().toStdString() + ")");
    if (f.size() > (1 << 20)) r.fail("over 1 MiB: not a project file");
    json j;
    try {
        j = json::parse(f.readAll().toStdString());
    } catch (const std::exception& e) {
        r.fail(std::string("not JSON (") + e.what() + ")");
    }
    if (!j.is_object() || j.value("format", json()) != kFormat)
        r.fail("not a QuickMerge++ Studio project (\"format\" is not \"" + std::string(kFormat) +
               "\")");
    if (r.integer(j, "version", "the file") != kVersion)
        r.fail("version " + std::to_string(r.integer(j, "version", "the file")) +
               " (this studio reads version 1)");
    ProjectState s;
    const json& in = r.at(j, "input", "the file");
    s.input = QString::fromStdString(r.text(in, "path", "input"));
    s.options.patch = int(r.integer(in, "patch", "input"));
    s.options.key = r.text(in, "key", "input", true);
    s.options.batch = r.integer(in, "batch", "input");
    s.options.hidden = r.text(in, "hidden", "input", true);
    s.options.hiddenKey = r.text(in, "hidden_key", "input", true);
    s.options.attention = r.text(in, "attention", "input", true);
    s.options.attentionKey = r.text(in, "attention_key", "input", true);
    s.options.labels = r.text(in, "labels", "input", true);
    s.options.projection = r.text(in, "projection", "input", true);
    s.params = r.params(r.at(j, "params", "the file"), "params");
    const json& ov = r.at(j, "overlays", "the file");
    if (!ov.is_array() || ov.size() > 64) r.fail("overlays is not a list");
    for (const auto& e : ov) {
        const json& on = r.at(e, "on", "an overlay");
        if (!on.is_boolean()) r.fail("an overlay's \"on\" is not true or false");
        s.overlays.emplace_back(on.get<bool>(), r.number(e, "opacity", "an overlay"));
    }
    s.page = QString::fromStdString(r.text(j, "page", "the file", true));
    if (j.contains("pin") && !j.at("pin").is_null()) s.pin = r.params(j.at("pin"), "pin");
    return s;
}

} // namespace studio
