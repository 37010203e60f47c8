// `qmpp report` of a `qmpp eval` output folder (internal to core/tools, used by
// htmlreport.cpp): eval.json of a ViT or of the language model, or an eval --sweep's sweep.json.
#pragma once

#include "qmpp/htmlreport.h"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace qmpp {

// htmlreport.cpp's pieces that the eval report shares: a JSON value as text, a two-column
// table, and an object's fields as its rows.
namespace html {
std::string jsonText(const nlohmann::ordered_json& v);
std::string table(const std::vector<std::pair<std::string, std::string>>& rows, bool embed);
std::vector<std::pair<std::string, std::string>> rowsOf(const nlohmann::ordered_json& j);
} // namespace html

// Fills doc (kind "eval", "eval-lm" or "eval-sweep", report, figures, checks) when doc.dir is
// an eval folder; false when it is not. The checks recompute agreement, KL and losses from the
// arrays beside the JSON.
bool loadEvalFolder(ReportDoc& doc);
std::string evalTitle(const ReportDoc& doc);
// The sections between the header and the figures.
void renderEvalBody(const ReportDoc& doc, bool embed, std::ostream& h);

} // namespace qmpp
