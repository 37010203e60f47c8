// `qmpp report` of a `qmpp eval` folder (evalreport.h): a ViT evaluation, its sweep, or the
// language model on a text. The checks recompute what eval.json claims from the arrays beside
// it, so a report that says "verified" vouches for its numbers.
#include "evalreport.h"

#include "svgplot.h"

#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/types.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace qmpp {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using html::jsonText;
using svg::num;

namespace {

void check(ReportDoc& doc, const std::string& what, bool ok, const std::string& detail) {
    doc.checks.push_back({what, ok, detail});
}

bool near(double a, double b, double tol = 1e-5) {
    return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b));
}

i64 argmax(const float* z, i64 n) {
    return std::max_element(z, z + n) - z;
}

double klRow(const float* a, const float* b, i64 n) {
    const double ma = *std::max_element(a, a + n), mb = *std::max_element(b, b + n);
    double za = 0, zb = 0;
    for (i64 i = 0; i < n; ++i) {
        za += std::exp(a[i] - ma);
        zb += std::exp(b[i] - mb);
    }
    double kl = 0;
    for (i64 i = 0; i < n; ++i) {
        const double la = a[i] - ma - std::log(za), lb = b[i] - mb - std::log(zb);
        kl += std::exp(la) * (la - lb);
    }
    return std::max(0.0, kl);
}

void vitEval(ReportDoc& doc) {
    const fs::path d(doc.dir);
    const json& r = doc.report;
    const i64 items = r.at("input").at("items").get<i64>();
    const i64 classes = r.at("model").at("classes").get<i64>();
    const json& seeds = r.at("per_seed");
    const NdArray plain = readNpy((d / "logits_plain.npy").string());
    const NdArray merged = readNpy((d / "logits_merged.npy").string());
    const bool shapes =
        plain.shape == std::vector<std::int64_t>{items, classes} &&
        merged.shape == std::vector<std::int64_t>{i64(seeds.size()), items, classes};
    check(doc, "logits match eval.json's sizes", shapes,
          "plain " + plain.shapeString() + ", merged " + merged.shapeString() + "; " +
              std::to_string(seeds.size()) + " seed(s), " + std::to_string(items) + " items, " +
              std::to_string(classes) + " classes");
    if (shapes) {
        const std::vector<float> p = plain.toFloat(), m = merged.toFloat();
        for (std::size_t s = 0; s < seeds.size(); ++s) {
            i64 agree = 0;
            double kl = 0;
            for (i64 i = 0; i < items; ++i) {
                const float* a = p.data() + i * classes;
                const float* b = m.data() + (i64(s) * items + i) * classes;
                agree += argmax(a, classes) == argmax(b, classes);
                kl += klRow(a, b, classes);
            }
            const double ag = double(agree) / double(std::max<i64>(1, items));
            const double claimedAg = seeds[s].at("agreement").at("value").get<double>();
            const double claimedKl = seeds[s].at("kl").at("mean").get<double>();
            const double klm = kl / double(std::max<i64>(1, items));
            check(doc,
                  "seed " + jsonText(seeds[s].at("seed")) + ": agreement and KL from the logits",
                  near(ag, claimedAg) && near(klm, claimedKl, 1e-4),
                  "agreement " + num(ag, 6) + " (eval.json " + num(claimedAg, 6) + "), KL " +
                      num(klm, 6) + " (" + num(claimedKl, 6) + ")");
        }
    }
    std::ifstream csv(d / "predictions.csv");
    i64 lines = 0;
    for (std::string line; std::getline(csv, line);)
        ++lines;
    check(doc, "predictions.csv has a row per item", lines == items + 1,
          std::to_string(lines - 1) + " rows for " + std::to_string(items) + " items");
    // tokens per block, plain and merged
    std::vector<double> tp, tm, xs;
    for (const auto& b : r.at("tokens").at("plain"))
        tp.push_back(b.at("tokens_out").get<double>());
    for (const auto& b : r.at("tokens").at("merged")) {
        tm.push_back(b.at("tokens_out").get<double>());
        xs.push_back(b.at("block").get<double>());
    }
    // overlays.json (qmpp eval --overlays): every picture it lists is there, and shown
    if (fs::exists(d / "overlays.json")) {
        const json o = [&] {
            std::ifstream f(d / "overlays.json");
            try {
                return json::parse(f);
            } catch (const json::exception&) {
                throw InputError((d / "overlays.json").string() + ": not valid JSON");
            }
        }();
        i64 listed = 0, missing = 0;
        for (const auto& item : o.value("items", json::array())) {
            if (!item.contains("files")) continue;
            for (auto it = item.at("files").begin(); it != item.at("files").end(); ++it) {
                ++listed;
                const fs::path f = d / it.value().get<std::string>();
                if (!fs::exists(f)) {
                    ++missing;
                    continue;
                }
                const json& sc = item.at("spearman_class_attention");
                const json& sr = item.at("spearman_rollout");
                doc.figures.push_back(
                    {"overlay-" + jsonText(item.at("item")) + "-" + it.key(),
                     jsonText(item.at("name")) + ": " + it.key(),
                     "Block " + jsonText(o.at("block")) + " of the merged model (" +
                         jsonText(o.at("method")) + " " + jsonText(o.at("schedule")) + "): label " +
                         jsonText(item.value("label_name", json("?"))) + ", merged prediction " +
                         jsonText(item.value("merged_name", json("?"))) + ", " +
                         jsonText(item.at("tokens_at_block")) +
                         " tokens. Spearman of the saliency with class attention " +
                         (sc.empty() ? "–" : jsonText(sc.back())) + ", with rollout " +
                         (sr.empty() ? "–" : jsonText(sr.back())) + ".",
                     {},
                     readFileBytes(f.string())});
            }
        }
        check(doc, "overlays.json's pictures exist", missing == 0,
              std::to_string(listed - missing) + " of " + std::to_string(listed) + " found");
    }
    doc.figures.push_back(
        {"tokens",
         "Tokens per block",
         "Tokens leaving each block's merge (class token included), unmerged (grey) and with " +
             jsonText(r.at("method")) + " " + jsonText(r.at("schedule")) + " (blue). FLOPs " +
             num(100.0 * r.at("flops").at("ratio").get<double>(), 3) + " % of the plain forward.",
         svg::svgLines("Tokens per block", {tp, tm}, {"#9e9e9e", "#3b528b"}, "block", "tokens", xs),
         {}});
}

void vitSweep(ReportDoc& doc) {
    const fs::path d(doc.dir);
    const json& rows = doc.report.at("rows");
    std::ifstream csv(d / "sweep.csv");
    i64 lines = 0;
    for (std::string line; std::getline(csv, line);)
        ++lines;
    check(doc, "sweep.csv has a row per point of sweep.json", lines == i64(rows.size()) + 1,
          std::to_string(lines - 1) + " rows, " + std::to_string(rows.size()) + " points");
    bool ordered = true;
    for (const auto& p : rows) {
        const double f = p.at("flops_ratio").get<double>();
        ordered = ordered && f > 0 && f <= 1.0 + 1e-12;
    }
    check(doc, "every point costs at most the plain forward", ordered, "FLOPs ratios in (0, 1]");
    if (fs::exists(d / "sweep.png")) {
        ReportFigure f{"sweep",
                       "Measures against the merge",
                       "Each method's measures against " + jsonText(doc.report.at("x")) +
                           ", with 95 % intervals (sweep.png).",
                       {},
                       readFileBytes((d / "sweep.png").string())};
        doc.figures.push_back(std::move(f));
    }
}

void lmEval(ReportDoc& doc) {
    const fs::path d(doc.dir);
    const json& r = doc.report;
    const i64 positions = r.at("positions").get<i64>();
    const NdArray plain = readNpy((d / "nll_plain.npy").string());
    const NdArray merged = readNpy((d / "nll_merged.npy").string());
    const json& seeds = r.at("seeds");
    const bool shapes = plain.shape == std::vector<std::int64_t>{positions} &&
                        merged.shape == std::vector<std::int64_t>{i64(seeds.size()), positions};
    check(doc, "losses match eval.json's sizes", shapes,
          "plain " + plain.shapeString() + ", merged " + merged.shapeString());
    if (!shapes) return;
    const std::vector<double> p = plain.toDouble(), m = merged.toDouble();
    double sum = 0;
    for (double v : p)
        sum += v;
    const double ce = sum / double(std::max<i64>(1, positions));
    check(doc, "plain cross-entropy from nll_plain.npy", near(ce, r.at("ce_plain").get<double>()),
          num(ce, 6) + " (eval.json " + num(r.at("ce_plain").get<double>(), 6) + ")");
    std::vector<std::string> names;
    std::vector<double> values = {ce};
    names.push_back("plain");
    for (std::size_t s = 0; s < seeds.size(); ++s) {
        double ms = 0;
        for (i64 i = 0; i < positions; ++i)
            ms += m[s * positions + i];
        ms /= double(std::max<i64>(1, positions));
        const double claimed = seeds[s].at("ce_merged").get<double>();
        check(doc, "seed " + jsonText(seeds[s].at("seed")) + ": merged cross-entropy",
              near(ms, claimed), num(ms, 6) + " (eval.json " + num(claimed, 6) + ")");
        names.push_back("seed " + jsonText(seeds[s].at("seed")));
        values.push_back(ms);
    }
    doc.figures.push_back(
        {"cross-entropy",
         "Next-word cross-entropy of the following words",
         "Unmerged, and with the prefix of " + jsonText(r.at("merge").at("prefix")) +
             " words compressed to " + jsonText(r.at("merge").at("groups")) + " at block " +
             jsonText(r.at("merge").at("block")) + " (" + jsonText(r.at("merge").at("method")) +
             "), per seed; nats per word over " + std::to_string(positions) + " positions.",
         svg::svgBars("Cross-entropy (nats/word)", names, values, "#3b528b", "nats/word", false),
         {}});
}

} // namespace

bool loadEvalFolder(ReportDoc& doc) {
    const fs::path d(doc.dir);
    auto read = [&](const fs::path& p) {
        std::ifstream f(p);
        try {
            return json::parse(f);
        } catch (const json::exception&) {
            throw InputError(p.string() + ": not valid JSON");
        }
    };
    if (fs::exists(d / "eval.json")) {
        doc.report = read(d / "eval.json");
        doc.kind =
            doc.report.contains("model") && doc.report.at("model").value("kind", "") == "causal-lm"
                ? "eval-lm"
                : "eval";
    } else if (fs::exists(d / "sweep.json")) {
        const json j = read(d / "sweep.json");
        if (j.value("tool", "") != "qmpp eval --sweep") return false;
        doc.report = j;
        doc.kind = "eval-sweep";
    } else {
        return false;
    }
    if (doc.kind == "eval")
        vitEval(doc);
    else if (doc.kind == "eval-lm")
        lmEval(doc);
    else
        vitSweep(doc);
    return true;
}

namespace {

std::string grid(const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows, bool embed) {
    std::ostringstream h;
    h << (embed ? "<table>" : "<table border=\"1\" cellspacing=\"0\" cellpadding=\"3\">") << "<tr>";
    for (const auto& c : head)
        h << "<th>" << htmlEscape(c) << "</th>";
    h << "</tr>";
    for (const auto& r : rows) {
        h << "<tr>";
        for (const auto& c : r)
            h << "<td>" << htmlEscape(c) << "</td>";
        h << "</tr>";
    }
    h << "</table>\n";
    return h.str();
}

std::string interval(const json& pair) {
    return "[" + num(pair.at(0).get<double>(), 4) + ", " + num(pair.at(1).get<double>(), 4) + "]";
}

} // namespace

std::string evalTitle(const ReportDoc& doc) {
    const json& r = doc.report;
    if (doc.kind == "eval-sweep") return "model sweep";
    return r.at("model").value("name", std::string("model")) + " with " +
           r.value("method", r.contains("merge") ? jsonText(r.at("merge").at("method")) : "?");
}

void renderEvalBody(const ReportDoc& doc, bool embed, std::ostream& h) {
    const json& r = doc.report;
    if (doc.kind == "eval-sweep") {
        h << "<h2>Sweep</h2>";
        std::vector<std::vector<std::string>> rows;
        const std::string x = r.value("x", std::string("r"));
        for (const auto& p : r.at("rows"))
            rows.push_back(
                {jsonText(p.at("method")), jsonText(p.at(x)), jsonText(p.at("seed")),
                 num(p.at("agreement").get<double>(), 4) + " " + interval(p.at("agreement_ci95")),
                 num(p.at("kl").get<double>(), 4), jsonText(p.at("accuracy_merged")),
                 num(p.at("flops_ratio").get<double>(), 4), jsonText(p.at("tokens_left"))});
        h << grid({"method", x, "seed", "top-1 agreement [95 %]", "KL", "accuracy", "FLOPs ratio",
                   "tokens left"},
                  rows, embed);
        if (!r.at("accuracy_plain").is_null())
            h << "<p>Unmerged accuracy: " << num(r.at("accuracy_plain").get<double>(), 4)
              << "</p>\n";
        return;
    }
    h << "<h2>Model</h2>" << html::table(html::rowsOf(r.at("model")), embed);
    h << "<h2>Input</h2>" << html::table(html::rowsOf(r.at("input")), embed);
    if (doc.kind == "eval-lm") {
        h << "<h2>Prefix compression</h2>" << html::table(html::rowsOf(r.at("merge")), embed);
        h << "<p>" << htmlEscape(jsonText(r.at("rule"))) << ".</p>";
        h << "<h2>Measures</h2>";
        std::vector<std::vector<std::string>> rows;
        for (const auto& s : r.at("seeds"))
            rows.push_back({jsonText(s.at("seed")), num(r.at("ce_plain").get<double>(), 5),
                            num(s.at("ce_merged").get<double>(), 5),
                            num(s.at("ce_change").get<double>(), 3),
                            num(s.at("top1_agreement").get<double>(), 4),
                            num(s.at("kl_mean").get<double>(), 4)});
        h << grid({"seed", "cross-entropy plain", "merged", "change", "top-1 agreement", "KL"},
                  rows, embed);
        h << html::table(
            {{"backend", jsonText(r.value("backend", json("cpu")))},
             {"precision", jsonText(r.value("precision", json("fp32")))},
             {"positions scored", jsonText(r.at("positions"))},
             {"GFLOPs per window, plain",
              num(r.at("flops_per_window").at("plain").get<double>() / 1e9, 4)},
             {"GFLOPs per window, merged",
              num(r.at("flops_per_window").at("merged").get<double>() / 1e9, 4)},
             {"ms per window, plain", num(r.at("ms_per_window").at("plain").get<double>())},
             {"ms per window, merged", num(r.at("ms_per_window").at("merged").get<double>())}},
            embed);
        return;
    }
    {
        // the first predictions, as predictions.csv has them
        std::ifstream csv(fs::path(doc.dir) / "predictions.csv");
        std::string line;
        std::vector<std::vector<std::string>> rows;
        std::vector<std::string> head;
        for (int n = 0; std::getline(csv, line) && n <= 20; ++n) {
            std::vector<std::string> cells;
            std::string cell;
            bool quoted = false;
            for (char ch : line) {
                if (ch == '"')
                    quoted = !quoted;
                else if (ch == ',' && !quoted)
                    cells.push_back(cell), cell.clear();
                else
                    cell += ch;
            }
            cells.push_back(cell);
            if (n == 0)
                head = cells;
            else
                rows.push_back(cells);
        }
        if (!head.empty()) {
            h << "<h2>Predictions</h2><p>The first " << rows.size()
              << " items (all of them in predictions.csv).</p>";
            h << grid(head, rows, embed);
        }
    }
    h << "<h2>Merge</h2>"
      << html::table({{"method", jsonText(r.at("method"))},
                      {"schedule", jsonText(r.at("schedule"))},
                      {"backend", jsonText(r.value("backend", json("cpu")))},
                      {"precision", jsonText(r.value("precision", json("fp32")))},
                      {"FLOPs ratio", num(r.at("flops").at("ratio").get<double>(), 4)}},
                     embed);
    h << html::table(html::rowsOf(r.at("parameters")), embed);
    h << "<h2>Measures</h2>";
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : r.at("per_seed")) {
        std::vector<std::string> row = {jsonText(s.at("seed")),
                                        num(s.at("agreement").at("value").get<double>(), 4) + " " +
                                            interval(s.at("agreement").at("ci95")),
                                        num(s.at("kl").at("mean").get<double>(), 4) + " " +
                                            interval(s.at("kl").at("ci95")),
                                        num(s.at("max_logit_change").get<double>(), 4)};
        if (s.contains("accuracy_merged"))
            row.push_back(num(s.at("accuracy_merged").at("value").get<double>(), 4) + " " +
                          interval(s.at("accuracy_merged").at("ci95")));
        rows.push_back(row);
    }
    std::vector<std::string> head = {"seed", "top-1 agreement [95 %]", "KL [95 %]",
                                     "largest logit change"};
    if (!rows.empty() && rows[0].size() > 4) head.push_back("accuracy [95 %]");
    h << grid(head, rows, embed);
    if (r.contains("time")) h << "<h2>Time</h2>" << html::table(html::rowsOf(r.at("time")), embed);
}

} // namespace qmpp
