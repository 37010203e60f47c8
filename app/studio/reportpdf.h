// The HTML report of an output folder as a PDF: the same document (qmpp::renderHtml without
// embedding) laid out by Qt's rich text, its figures supplied as images (SVG plots rendered
// with QtSvg, the folder's PNGs as they are), printed with QPdfWriter.
#pragma once

#include "qmpp/htmlreport.h"

#include <QSizeF>
#include <QString>

#include <memory>
#include <vector>

class QTextDocument;

namespace studio {

// The laid-out document (A4 page width); its text is what the PDF shows.
std::unique_ptr<QTextDocument> reportDocument(const qmpp::ReportDoc& doc);
// Where each top-level piece of a paginated document falls: a heading, a figure (a paragraph
// holding an image), a table or text, with its first and last page.
struct PagePiece {
    enum Kind { Heading, Figure, Table, Text } kind;
    QString text; // the first 60 characters, for messages
    double top, bottom;
    int firstPage, lastPage;
};
std::vector<PagePiece> pagePieces(const QTextDocument& d);
// Lays `d` out on pages of `page` (pixels at 96 dpi, 2 cm margins) and moves page breaks so
// that a heading starts the page of what it introduces, and a table or figure that fits on a
// page is never split or left behind by its heading. Returns the page count.
int paginateReport(QTextDocument& d, const QSizeF& page);
// Writes `path` whole or not at all; false with `error` set on failure.
bool writeReportPdf(const qmpp::ReportDoc& doc, const QString& path, QString* error);

} // namespace studio
