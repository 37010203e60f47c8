// The HTML report of an output folder: tables from report.json, figures as inline SVG or the
// folder's PNGs, the token strip of a text run, and checks of the arrays against the report.
#include "qmpp/htmlreport.h"
#include "evalreport.h"
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/overlay.h"
#include "qmpp/views.h"
#include "svgplot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace qmpp {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;
using html::jsonText;
using html::rowsOf;
using html::table;
using svg::hex;
using svg::num;
using svg::svgBars;
using svg::svgLines;

std::string htmlEscape(const std::string& s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            o += "&amp;";
            break;
        case '<':
            o += "&lt;";
            break;
        case '>':
            o += "&gt;";
            break;
        case '"':
            o += "&quot;";
            break;
        default:
            o += c;
        }
    }
    return o;
}

std::string base64(const std::vector<std::uint8_t>& b) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string o;
    o.reserve((b.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < b.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(b[i]) << 16) |
                                (i + 1 < b.size() ? std::uint32_t(b[i + 1]) << 8 : 0) |
                                (i + 2 < b.size() ? std::uint32_t(b[i + 2]) : 0);
        o += t[(v >> 18) & 63];
        o += t[(v >> 12) & 63];
        o += i + 1 < b.size() ? t[(v >> 6) & 63] : '=';
        o += i + 2 < b.size() ? t[v & 63] : '=';
    }
    return o;
}

std::string html::jsonText(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return num(v.get<double>(), 6);
    if (v.is_null()) return "–";
    return v.dump();
}

namespace {

// --- the folder --------------------------------------------------------------------------------

json readJson(const std::string& path) {
    const auto bytes = readFileBytes(path);
    json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw InputError(path + ": not a JSON object");
    return j;
}

// The first item of an [N] / [B, N] / [U, N] array, as doubles.
std::vector<double> firstRow(const NdArray& a) {
    const auto v = a.toDouble();
    const i64 n = a.ndim() == 0 ? 0 : a.shape.back();
    return std::vector<double>(v.begin(), v.begin() + std::min<i64>(n, i64(v.size())));
}

// labels.npy and saliency.npy, read once for the figures and the checks.
struct RunArrays {
    std::optional<NdArray> labels, saliency;
};

// The fields the checks and the page read, each of its kind, named by its JSON pointer when it
// is missing or of another kind ("/parameters/k must be a whole number, but is a string").
enum class Kind { Object, Array, NonEmptyArray, Integer, Number, String };
const json& requireField(const json& root, const std::string& pointer, Kind kind,
                         const std::string& file) {
    const json::json_pointer ptr(pointer);
    if (!root.contains(ptr)) throw InputError(file + ": " + pointer + " is missing");
    const json& v = root.at(ptr);
    const bool ok = kind == Kind::Object          ? v.is_object()
                    : kind == Kind::Array         ? v.is_array()
                    : kind == Kind::NonEmptyArray ? v.is_array() && !v.empty()
                    : kind == Kind::Integer       ? v.is_number_integer()
                    : kind == Kind::Number        ? v.is_number()
                                                  : v.is_string();
    if (!ok) {
        static const char* names[] = {"an object",      "an array", "a non-empty array",
                                      "a whole number", "a number", "a string"};
        throw InputError(file + ": " + pointer + " must be " + names[int(kind)] + ", but is " +
                         (v.is_array() && v.empty() ? std::string("an empty array")
                                                    : std::string("a ") + v.type_name()));
    }
    return v;
}

void requireFields(const json& rep, const std::string& file) {
    requireField(rep, "/input", Kind::Object, file);
    requireField(rep, "/parameters", Kind::Object, file);
    requireField(rep, "/parameters/k", Kind::Integer, file);
    requireField(rep, "/input/d", Kind::Integer, file);
    for (const char* s : {"/tool", "/method"})
        requireField(rep, s, Kind::String, file);
    if (rep.contains("outputs"))
        for (std::size_t i = 0; i < requireField(rep, "/outputs", Kind::Array, file).size(); ++i)
            requireField(rep, "/outputs/" + std::to_string(i), Kind::String, file);
    // one run, a batch (items) or a video (units): each with its metrics
    std::string metrics = "/metrics";
    for (const char* many : {"units", "items"})
        if (rep.contains(many)) {
            const json& list =
                requireField(rep, std::string("/") + many, Kind::NonEmptyArray, file);
            for (std::size_t i = 0; i < list.size(); ++i)
                requireField(rep, "/" + std::string(many) + "/" + std::to_string(i) + "/metrics",
                             Kind::Object, file);
            metrics = "/" + std::string(many) + "/0/metrics";
        }
    requireField(rep, metrics, Kind::Object, file);
    for (const char* f : {"/group_size_min", "/group_size_max"})
        requireField(rep, metrics + f, Kind::Integer, file);
    requireField(rep, metrics + "/group_size_median", Kind::Number, file);
}

// A per-token array of the folder: [N], or [items, N] for a batch or a video, with N >= 1; and,
// when `like` is given, of its shape.
void requireTokenArray(const NdArray& a, const fs::path& file, const NdArray* like = nullptr) {
    if ((a.ndim() != 1 && a.ndim() != 2) || a.numel() < 1)
        throw InputError(file.string() + ": expected [N] or [items, N] with N >= 1, got " +
                         a.shapeString());
    if (like && a.shape != like->shape)
        throw InputError(file.string() + ": shape " + a.shapeString() + " differs from " +
                         "labels.npy's " + like->shapeString());
}

// The folder's arrays checked against each other and the report before any is indexed: a
// report of K that labels.npy cannot hold, or arrays of other shapes, are input errors.
void requireConsistent(const ReportDoc& doc, RunArrays& arrays) {
    const fs::path d(doc.dir);
    if (!arrays.labels) return;
    requireTokenArray(*arrays.labels, d / "labels.npy");
    if (arrays.saliency) requireTokenArray(*arrays.saliency, d / "saliency.npy", &*arrays.labels);
    for (const char* f : {"mask.npy", "mass.npy"})
        if (fs::exists(d / f)) requireTokenArray(readNpy((d / f).string()), d / f, &*arrays.labels);
    const i64 n = arrays.labels->shape.back();
    const i64 k = doc.report.at("parameters").value("k", i64(0));
    if (k < 1 || k > n)
        throw InputError((d / "report.json").string() + ": /parameters/k = " + std::to_string(k) +
                         " does not lie in 1..N = " + std::to_string(n) + " of labels.npy");
    if (fs::exists(d / "merged.npy")) {
        const NdArray merged = readNpy((d / "merged.npy").string());
        const std::size_t nd = arrays.labels->shape.size() + 1;
        const bool ok = merged.ndim() == int(nd) && merged.shape.back() >= 1 &&
                        (nd == 2 || merged.shape[0] == arrays.labels->shape[0]);
        if (!ok)
            throw InputError((d / "merged.npy").string() + ": expected [K, D] (or [items, K, D]) " +
                             "beside labels.npy " + arrays.labels->shapeString() + ", got " +
                             merged.shapeString());
    }
}

void addChecks(ReportDoc& doc, const RunArrays& arrays) {
    const json& rep = doc.report;
    auto check = [&](const std::string& what, bool ok, const std::string& detail) {
        doc.checks.push_back({what, ok, detail});
    };
    check("written by qmpp", rep.value("tool", "").rfind("qmpp", 0) == 0,
          "tool: " + jsonText(rep.value("tool", json("?"))));
    if (rep.contains("outputs")) {
        std::string missing;
        for (const auto& f : rep.at("outputs"))
            if (!fs::exists(fs::path(doc.dir) / f.get<std::string>()))
                missing += (missing.empty() ? "" : ", ") + f.get<std::string>();
        check("every output the report lists is in the folder", missing.empty(),
              missing.empty() ? std::to_string(rep.at("outputs").size()) + " files"
                              : "missing: " + missing);
    }
    const fs::path d(doc.dir);
    if (doc.kind == "sweep" || !arrays.labels) return;
    const i64 k = rep.at("parameters").value("k", i64(0));
    const std::string method = rep.value("method", "quickmerge");
    try {
        const NdArray& labels = *arrays.labels;
        const NdArray merged = readNpy((d / "merged.npy").string());
        const i64 n = labels.shape.back();
        const i64 items = labels.numel() / std::max<i64>(1, n);
        const auto lab = labels.toDouble();
        bool inRange = true, noneEmpty = true, dropsOk = true;
        std::vector<i64> sizes0;
        for (i64 b = 0; b < items; ++b) {
            std::vector<i64> size(static_cast<std::size_t>(std::max<i64>(k, 0)), 0);
            for (i64 i = 0; i < n; ++i) {
                const i64 l = i64(lab[b * n + i]);
                if (l < -1 || l >= k)
                    inRange = false;
                else if (l == -1)
                    dropsOk = dropsOk && (method == "topk" || method == "random");
                else
                    ++size[l];
            }
            for (i64 s : size)
                noneEmpty = noneEmpty && s > 0;
            if (b == 0) sizes0 = size;
        }
        check("labels index the K merged tokens", inRange && dropsOk,
              "K = " + std::to_string(k) + ", " + std::to_string(items) +
                  " item(s) of N = " + std::to_string(n));
        check("every group has a token", noneEmpty, std::to_string(k) + " groups");
        const bool shapeOk = merged.ndim() >= 2 && merged.shape[merged.ndim() - 2] == k &&
                             merged.shape.back() == rep.at("input").value("d", i64(-1));
        check("merged tokens are [K, D]", shapeOk, "merged.npy " + merged.shapeString());
        // the report's group sizes (first item) against the labels
        const json& m = rep.contains("units")   ? rep.at("units").at(0).at("metrics")
                        : rep.contains("items") ? rep.at("items").at(0).at("metrics")
                                                : rep.at("metrics");
        if (!sizes0.empty() && m.contains("group_size_max")) {
            std::vector<i64> s = sizes0;
            std::sort(s.begin(), s.end());
            const double median = s.size() % 2
                                      ? double(s[s.size() / 2])
                                      : 0.5 * double(s[s.size() / 2 - 1] + s[s.size() / 2]);
            const bool ok = s.front() == m.at("group_size_min").get<i64>() &&
                            s.back() == m.at("group_size_max").get<i64>() &&
                            std::abs(median - m.at("group_size_median").get<double>()) < 1e-9;
            check("group sizes match the report", ok,
                  "min " + std::to_string(s.front()) + ", median " + num(median) + ", max " +
                      std::to_string(s.back()));
        }
        const auto sal =
            (arrays.saliency ? *arrays.saliency : readNpy((d / "saliency.npy").string()))
                .toDouble();
        const auto [lo, hi] = std::minmax_element(sal.begin(), sal.end());
        check("saliency lies in [0, 1]", *lo >= 0 && *hi <= 1,
              "min " + num(*lo) + ", max " + num(*hi));
        if (fs::exists(d / "mask.npy") && method == "quickmerge") {
            const auto mask = readNpy((d / "mask.npy").string()).toDouble();
            double worst = 0;
            for (i64 b = 0; b < items; ++b) {
                double sum = 0;
                for (i64 i = 0; i < n; ++i)
                    sum += mask[b * n + i];
                worst = std::max(worst, std::abs(sum - 1));
            }
            check("the Gumbel-softmax mask sums to 1", worst < 1e-3,
                  "largest deviation " + num(worst, 3));
        }
    } catch (const json::exception&) {
        throw; // a malformed report.json: loadReport names the file and the field
    } catch (const std::exception& e) {
        check("the folder's arrays can be read", false, e.what());
    }
}

void addFigures(ReportDoc& doc, const RunArrays& arrays) {
    const fs::path d(doc.dir);
    const json& rep = doc.report;
    auto png = [&](const std::string& file, const std::string& title, const std::string& caption) {
        if (fs::exists(d / file))
            doc.figures.push_back({file, title, caption, {}, readFileBytes((d / file).string())});
    };
    auto svg = [&](const std::string& id, const std::string& title, const std::string& caption,
                   std::string s) {
        if (!s.empty()) doc.figures.push_back({id, title, caption, std::move(s), {}});
    };
    if (doc.kind == "sweep") {
        png("sweep.png", "Metrics against budget", "One panel per metric, one curve per method.");
        return;
    }
    png("saliency.png", "Saliency",
        "The image under a viridis heatmap of each token's saliency (yellow = salient).");
    png("clusters.png", "Groups",
        "Each group filled with the mean colour of its pixels, group edges in the group's colour.");
    png("merged.png", "Merged tokens", "Each token replaced by the merged token of its group.");
    if (arrays.saliency) {
        svg("saliency-curve", "Saliency per token",
            doc.kind == "video" ? "First unit." : "Token order as in the input.",
            svgLines("Saliency s per token", {firstRow(*arrays.saliency)}, {"#21918c"}, "token",
                     "s"));
    }
    if (arrays.labels) {
        const auto lab = firstRow(*arrays.labels);
        std::map<i64, i64> size;
        for (double l : lab)
            if (l >= 0) ++size[i64(l)];
        std::map<i64, double> hist;
        for (const auto& [g, s] : size)
            hist[s] += 1;
        std::vector<std::string> names;
        std::vector<double> counts;
        for (const auto& [s, c] : hist)
            names.push_back(std::to_string(s)), counts.push_back(c);
        if (names.size() > 40) { // too many sizes for bars: powers of two
            std::map<int, double> bins;
            for (const auto& [s, c] : hist)
                bins[int(std::floor(std::log2(double(s))))] += c;
            names.clear(), counts.clear();
            for (const auto& [b, c] : bins)
                names.push_back(std::to_string(1 << b) + "–" + std::to_string((1 << (b + 1)) - 1)),
                    counts.push_back(c);
        }
        svg("group-sizes", "Group sizes", "How many groups have each size (first item).",
            svgBars("Groups by size (tokens)", names, counts, "#5cc863", "groups", false));
    }
    if (rep.contains("timings_ms")) {
        std::vector<std::string> names;
        std::vector<double> ms;
        for (auto it = rep.at("timings_ms").begin(); it != rep.at("timings_ms").end(); ++it)
            names.push_back(it.key()), ms.push_back(it.value().get<double>());
        svg("timings", "Stage timings", "Wall time of each stage of this run, in ms (log scale).",
            svgBars("Time per stage (ms)", names, ms, "#3b528b", "ms", true));
    }
    if (rep.contains("units") && rep.at("units").size() > 1) {
        std::vector<double> ms, flicker, frames;
        for (const auto& u : rep.at("units")) {
            frames.push_back(u.at("frames").at(0).get<double>());
            ms.push_back(u.at("pipeline_ms").get<double>());
            flicker.push_back(u.at("flicker_from_previous").is_null()
                                  ? std::nan("")
                                  : u.at("flicker_from_previous").get<double>());
        }
        svg("unit-times", "Pipeline time per unit", "Each merge unit's pipeline time.",
            svgLines("Pipeline time per unit (ms)", {ms}, {"#3b528b"}, "first frame", "ms",
                     frames));
        flicker.erase(flicker.begin());
        frames.erase(frames.begin());
        svg("flicker", "Flicker", rep.at("summary").value("flicker_definition", ""),
            svgLines("Group flicker between consecutive units", {flicker}, {"#d04030"},
                     "first frame", "fraction", frames));
    }
}

} // namespace

std::string html::table(const std::vector<std::pair<std::string, std::string>>& rows, bool embed) {
    std::ostringstream s;
    s << (embed ? "<table>" : "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">");
    for (const auto& [k, v] : rows)
        s << "<tr><th>" << htmlEscape(k) << "</th><td>" << htmlEscape(v) << "</td></tr>";
    s << "</table>";
    return s.str();
}

std::vector<std::pair<std::string, std::string>> html::rowsOf(const json& j) {
    std::vector<std::pair<std::string, std::string>> rows;
    if (!j.is_object()) return rows;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.value().is_array() && it.value().size() > 8)
            continue; // per-position series: in the figures
        if (it.value().is_object() && it.key() == "group_size_histogram") {
            rows.emplace_back(it.key(), it.value().at("counts").dump() + " over bins " +
                                            jsonText(it.value().at("bins")));
            continue;
        }
        rows.emplace_back(it.key(), jsonText(it.value()));
    }
    return rows;
}

std::string viridisHex(double v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%06x", unsigned(viridisRgb(v)));
    return buf;
}

std::string groupHex(long long g) {
    const std::uint32_t c = groupRgb(g);
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%06x", unsigned(c));
    return buf;
}

bool ReportDoc::verified() const {
    return !checks.empty() &&
           std::all_of(checks.begin(), checks.end(), [](const ReportCheck& c) { return c.ok; });
}

namespace {

ReportDoc loadReportUnchecked(const std::string& dir) {
    ReportDoc doc;
    doc.dir = dir;
    const fs::path d(dir);
    if (!fs::is_directory(d)) throw InputError(dir + ": no such folder");
    if (!fs::exists(d / "report.json") && loadEvalFolder(doc)) return doc;
    if (fs::exists(d / "report.json")) {
        doc.report = readJson((d / "report.json").string());
        if (!doc.report.contains("input") || !doc.report.contains("parameters"))
            throw InputError(dir + "/report.json: not a qmpp run report (no input or parameters)");
        requireFields(doc.report, (d / "report.json").string());
        doc.kind = doc.report.at("input").value("kind", "embeddings");
    } else if (fs::exists(d / "sweep.json")) {
        doc.report = readJson((d / "sweep.json").string());
        doc.kind = "sweep";
    } else {
        throw InputError(
            dir + ": holds no report.json or sweep.json (is it a qmpp run or sweep folder?)");
    }
    RunArrays arrays;
    if (doc.kind != "sweep") {
        if (fs::exists(d / "labels.npy")) arrays.labels = readNpy((d / "labels.npy").string());
        if (fs::exists(d / "saliency.npy"))
            arrays.saliency = readNpy((d / "saliency.npy").string());
        requireConsistent(doc, arrays);
    }
    addFigures(doc, arrays);
    addChecks(doc, arrays);
    // the model in the loop, when the folder holds its evaluation (the studio's report)
    for (const char* sub : {"model", "model-sweep"}) {
        ReportDoc s;
        s.dir = (d / sub).string();
        if (!fs::is_directory(d / sub) || !loadEvalFolder(s)) continue;
        for (ReportFigure f : s.figures) {
            f.id = std::string(sub) + "-" + f.id;
            doc.figures.push_back(std::move(f));
        }
        for (ReportCheck c : s.checks) {
            c.what = std::string(sub) + "/: " + c.what;
            doc.checks.push_back(std::move(c));
        }
        doc.sections.push_back(std::move(s));
    }
    return doc;
}

// Runs f; a json::exception (a field requireFields does not vouch for) becomes an InputError
// naming the folder's report file, with the library's message without its tag.
template <class F> auto namingTheFile(const std::string& dir, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const json::exception& e) {
        std::string what = e.what();
        const std::size_t tag = what.find("] ");
        if (what.rfind("[json.exception.", 0) == 0 && tag != std::string::npos)
            what = what.substr(tag + 2);
        const fs::path d(dir);
        const std::string file = fs::exists(d / "report.json") ? "report.json" : "sweep.json";
        throw InputError((d / file).string() + ": " + what);
    }
}

std::string renderHtmlUnchecked(const ReportDoc& doc, bool embed);

} // namespace

ReportDoc loadReport(const std::string& dir) {
    return namingTheFile(dir, [&] { return loadReportUnchecked(dir); });
}

std::string renderHtml(const ReportDoc& doc, bool embed) {
    return namingTheFile(doc.dir, [&] { return renderHtmlUnchecked(doc, embed); });
}

namespace {

std::string renderHtmlUnchecked(const ReportDoc& doc, bool embed) {
    const json& rep = doc.report;
    std::ostringstream h;
    const bool eval = doc.kind.rfind("eval", 0) == 0;
    const std::string title =
        "QuickMerge++ report — " +
        (eval                  ? evalTitle(doc)
         : doc.kind == "sweep" ? std::string("budget sweep")
                               : fs::path(rep.at("input").value("path", "")).filename().string());
    h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << htmlEscape(title)
      << "</title>\n";
    if (embed)
        h << "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px "
             "8px;text-align:left;"
             "font-size:13px}th{background:#f3f3f3}figure{margin:1em "
             "0}figcaption{color:#555;font-size:13px}"
             ".ok{color:#1a7f37}.bad{color:#c62828}.tok{padding:1px "
             "3px;margin:1px;border-radius:3px;line-height:2}"
             "img{max-width:100%}</style>";
    h << "</head><body>\n<h1>" << htmlEscape(title) << "</h1>\n";
    h << "<p>qmpp " << htmlEscape(jsonText(rep.value("version", json("?")))) << " · created "
      << htmlEscape(jsonText(rep.value("created", json("–")))) << " · folder "
      << htmlEscape(doc.dir) << "</p>\n";
    const std::string status = doc.verified() ? "verified" : "NOT verified";
    h << "<p><b>Status: <font color=\"" << (doc.verified() ? "#1a7f37" : "#c62828")
      << "\"><span class=\"" << (doc.verified() ? "ok" : "bad") << "\">" << status
      << "</span></font></b> ("
      << std::count_if(doc.checks.begin(), doc.checks.end(),
                       [](const ReportCheck& c) { return c.ok; })
      << " of " << doc.checks.size() << " checks of this folder passed)</p>\n";

    if (eval) {
        renderEvalBody(doc, embed, h);
    } else if (doc.kind == "sweep") {
        if (rep.contains("input")) h << "<h2>Input</h2>" << table(rowsOf(rep.at("input")), embed);
        if (rep.contains("parameters"))
            h << "<h2>Parameters</h2>" << table(rowsOf(rep.at("parameters")), embed);
        h << "<h2>Sweep</h2>";
        if (rep.contains("rows") && rep.at("rows").is_array() && !rep.at("rows").empty()) {
            h << (embed ? "<table>" : "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">")
              << "<tr>";
            for (auto it = rep.at("rows").at(0).begin(); it != rep.at("rows").at(0).end(); ++it)
                h << "<th>" << htmlEscape(it.key()) << "</th>";
            h << "</tr>";
            for (const auto& r : rep.at("rows")) {
                h << "<tr>";
                for (auto it = r.begin(); it != r.end(); ++it)
                    h << "<td>" << htmlEscape(jsonText(it.value())) << "</td>";
                h << "</tr>";
            }
            h << "</table>\n";
        }
    } else {
        h << "<h2>Run</h2>"
          << table({{"method", jsonText(rep.value("method", json("?")))},
                    {"backend", jsonText(rep.value("backend", json("?")))},
                    {"device", jsonText(rep.value("device", json("?")))},
                    {"precision", jsonText(rep.value("precision", json("?")))},
                    {"saliency from", jsonText(rep.value("saliency_source", json("?")))},
                    {"AR heads", jsonText(rep.value("ar_heads", json("?")))}},
                   embed);
        h << "<h2>Input</h2>" << table(rowsOf(rep.at("input")), embed);
        h << "<h2>Parameters</h2>" << table(rowsOf(rep.at("parameters")), embed);
        if (rep.contains("summary"))
            h << "<h2>Video summary</h2>" << table(rowsOf(rep.at("summary")), embed);
        if (rep.contains("metrics"))
            h << "<h2>Metrics</h2>" << table(rowsOf(rep.at("metrics")), embed);
        if (rep.contains("losses"))
            h << "<h2>Losses</h2>" << table(rowsOf(rep.at("losses")), embed);
        if (rep.contains("timings_ms"))
            h << "<h2>Timings (ms)</h2>" << table(rowsOf(rep.at("timings_ms")), embed);
        if (rep.contains("notes") && !rep.at("notes").empty()) {
            h << "<h2>Notes</h2><ul>";
            for (const auto& n : rep.at("notes"))
                h << "<li>" << htmlEscape(jsonText(n)) << "</li>";
            h << "</ul>";
        }
    }
    if (rep.contains("text")) {
        const json& t = rep.at("text");
        h << "<h2>Tokens</h2><p>Background: saliency (viridis, yellow = salient). Merged spans in "
             "[brackets] "
             "coloured by group.</p><p>";
        std::map<i64, i64> spanAt; // begin -> end
        std::map<i64, i64> spanGroup;
        for (const auto& s : t.at("spans"))
            spanAt[s.at("begin").get<i64>()] = s.at("end").get<i64>(),
            spanGroup[s.at("begin").get<i64>()] = s.at("group").get<i64>();
        i64 openEnd = -1;
        std::string openColour;
        for (const auto& tok : t.at("tokens")) {
            const i64 i = tok.at("index").get<i64>();
            if (spanAt.count(i)) {
                openEnd = spanAt[i];
                openColour = groupHex(spanGroup[i]);
                h << "<b><font color=\"" << openColour << "\">[</font></b>";
            }
            const double s = tok.at("saliency").get<double>();
            h << "<span class=\"tok\" style=\"background-color:" << viridisHex(s)
              << ";color:" << (s > 0.55 ? "#000" : "#fff") << "\" title=\"group "
              << tok.at("group").get<i64>() << ", saliency " << num(s, 3) << "\">"
              << htmlEscape(tok.at("text").get<std::string>()) << "</span> ";
            if (i + 1 == openEnd)
                h << "<b><font color=\"" << openColour << "\">]</font></b> ", openEnd = -1;
        }
        h << "</p><h3>Groups</h3><ol start=\"0\">";
        for (const auto& g : t.at("groups"))
            h << "<li>(" << g.at("size").get<i64>() << ") "
              << htmlEscape(g.at("text").get<std::string>()) << "</li>";
        h << "</ol>\n";
    }
    for (const ReportDoc& s : doc.sections) {
        h << "<h2>" << (s.kind == "eval-sweep" ? "Model in the loop: sweep" : "Model in the loop")
          << "</h2><p>From " << htmlEscape(s.dir) << " (figures below).</p>\n";
        renderEvalBody(s, embed, h);
    }
    if (!doc.figures.empty()) h << "<h2>Figures</h2>\n";
    for (const auto& f : doc.figures) {
        if (!embed) { // Qt's rich text knows no <figure>
            h << "<h3>" << htmlEscape(f.title) << "</h3><p><img src=\"figure:" << htmlEscape(f.id)
              << "\"></p><p><i>" << htmlEscape(f.caption) << "</i></p>\n";
            continue;
        }
        h << "<figure><h3>" << htmlEscape(f.title) << "</h3>";
        if (!f.png.empty())
            h << "<img alt=\"" << htmlEscape(f.title) << "\" src=\"data:image/png;base64,"
              << base64(f.png) << "\">";
        else
            h << f.svg;
        h << "<figcaption>" << htmlEscape(f.caption) << "</figcaption></figure>\n";
    }
    h << "<h2>Checks</h2>"
      << (embed ? "<table>" : "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">")
      << "<tr><th>check</th><th>result</th><th>detail</th></tr>";
    for (const auto& c : doc.checks)
        h << "<tr><td>" << htmlEscape(c.what) << "</td><td class=\"" << (c.ok ? "ok" : "bad")
          << "\"><font color=\"" << (c.ok ? "#1a7f37" : "#c62828") << "\">"
          << (c.ok ? "pass" : "FAIL") << "</font></td><td>" << htmlEscape(c.detail) << "</td></tr>";
    h << "</table>\n</body></html>\n";
    return h.str();
}

} // namespace

std::string writeHtmlReport(const ReportDoc& doc, const std::string& out) {
    const std::string path = out.empty() ? (fs::path(doc.dir) / "report.html").string() : out;
    const std::string html = renderHtml(doc, true);
    writeFileAtomic(path, std::vector<std::uint8_t>(html.begin(), html.end()));
    return path;
}

} // namespace qmpp
