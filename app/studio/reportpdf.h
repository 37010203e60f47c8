// The HTML report of an output folder as a PDF: the same document (qmpp::renderHtml without
// embedding) laid out by Qt's rich text, its figures supplied as images (SVG plots rendered
// with QtSvg, the folder's PNGs as they are), printed with QPdfWriter.
#pragma once

#include "qmpp/htmlreport.h"

#include <QString>

#include <memory>

class QTextDocument;

namespace studio {

// The laid-out document (A4 page width); its text is what the PDF shows.
std::unique_ptr<QTextDocument> reportDocument(const qmpp::ReportDoc& doc);
// Writes `path` whole or not at all; false with `error` set on failure.
bool writeReportPdf(const qmpp::ReportDoc& doc, const QString& path, QString* error);

} // namespace studio
