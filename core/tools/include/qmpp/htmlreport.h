// One self-contained HTML report of a `qmpp run` output folder (image, embeddings or video) or
// of a `qmpp sweep` folder: parameters, input, device, version, timings, metrics, figures
// (the folder's PNG overlays embedded, plots as inline SVG), the merged text spans, and the
// folder's consistency checks. No Qt: the CLI writes it with `qmpp report DIR`, the studio
// writes it and prints the same document to PDF.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qmpp {

struct ReportFigure {
    std::string id, title, caption;
    std::string svg;               // a plot drawn here, or
    std::vector<std::uint8_t> png; // a PNG file of the folder
};

struct ReportCheck {
    std::string what;
    bool ok = false;
    std::string detail;
};

struct ReportDoc {
    std::string dir, kind;         // kind: "image", "embeddings", "video" or "sweep"
    nlohmann::ordered_json report; // report.json (or sweep.json)
    std::vector<ReportFigure> figures;
    std::vector<ReportCheck> checks;
    // A run folder's model/ and model-sweep/ (the studio's report of the Model page): eval
    // folders rendered as sections; their figures and checks are also in the lists above.
    std::vector<ReportDoc> sections;
    bool verified() const; // every check passed
};

// Reads the folder; InputError when it holds no report.json / sweep.json or they are malformed.
ReportDoc loadReport(const std::string& dir);

// The HTML. embed = true: PNGs as data: URIs and SVG inline (one file, no other requests).
// embed = false: every figure as <img src="figure:ID"> for a renderer that supplies the
// images (the studio's PDF), and no CSS beyond what Qt's rich text understands.
std::string renderHtml(const ReportDoc& doc, bool embed = true);

// `qmpp report DIR [--out FILE]`: writes renderHtml(doc) to FILE (default doc.dir/report.html)
// whole or not at all. Returns the path written.
std::string writeHtmlReport(const ReportDoc& doc, const std::string& out = {});

// Helpers shared with other writers: HTML escaping, base64, a viridis colour and a group
// colour as "#rrggbb".
std::string htmlEscape(const std::string& s);
std::string base64(const std::vector<std::uint8_t>& bytes);
std::string viridisHex(double v);
std::string groupHex(long long g);

} // namespace qmpp
