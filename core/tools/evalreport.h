// `qmpp report` of a `qmpp eval` output folder (internal to core/tools, used by
// htmlreport.cpp): eval.json of a ViT or of the language model, or an eval --sweep's sweep.json.
#pragma once

#include "qmpp/htmlreport.h"

#include <ostream>
#include <string>

namespace qmpp {

// Fills doc (kind "eval", "eval-lm" or "eval-sweep", report, figures, checks) when doc.dir is
// an eval folder; false when it is not. The checks recompute agreement, KL and losses from the
// arrays beside the JSON.
bool loadEvalFolder(ReportDoc& doc);
std::string evalTitle(const ReportDoc& doc);
// The sections between the header and the figures.
void renderEvalBody(const ReportDoc& doc, bool embed, std::ostream& h);

} // namespace qmpp
