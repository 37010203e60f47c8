#include "reportpdf.h"

#include <QAbstractTextDocumentLayout>
#include <QFile>
#include <QImage>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgRenderer>
#include <QTextBlock>
#include <QTextCursor>
#include <QTextDocument>
#include <QTextFrame>
#include <QTextLayout>
#include <QTextTable>
#include <QUrl>

#include <algorithm>
#include <cmath>

namespace studio {

std::unique_ptr<QTextDocument> reportDocument(const qmpp::ReportDoc& doc) {
    auto d = std::make_unique<QTextDocument>();
    constexpr int kWidth = 640; // figures at their SVG size
    for (const auto& f : doc.figures) {
        QImage img;
        if (!f.png.empty()) {
            img = QImage::fromData(f.png.data(), int(f.png.size()), "PNG");
            if (img.width() > kWidth) img = img.scaledToWidth(kWidth, Qt::SmoothTransformation);
        } else {
            QSvgRenderer svg(QByteArray::fromStdString(f.svg));
            img = QImage(svg.defaultSize() * 2,
                         QImage::Format_ARGB32); // twice the size: sharp in print
            img.fill(Qt::white);
            QPainter p(&img);
            svg.render(&p);
            p.end();
            img.setDevicePixelRatio(2.0);
        }
        d->addResource(QTextDocument::ImageResource, QUrl("figure:" + QString::fromStdString(f.id)),
                       img);
    }
    d->setHtml(QString::fromStdString(qmpp::renderHtml(doc, false)));
    return d;
}

std::vector<PagePiece> pagePieces(const QTextDocument& d) {
    std::vector<PagePiece> out;
    const double h = d.pageSize().height();
    auto* layout = d.documentLayout();
    auto page = [&](double y) { return h > 0 ? int(y / h) : 0; };
    for (auto it = d.rootFrame()->begin(); !it.atEnd(); ++it) {
        PagePiece p{PagePiece::Text, {}, 0, 0, 0, 0};
        QRectF r;
        if (QTextFrame* f = it.currentFrame()) {
            r = layout->frameBoundingRect(f);
            p.kind = qobject_cast<QTextTable*>(f) ? PagePiece::Table : PagePiece::Text;
            QTextCursor c(f->firstCursorPosition());
            c.setPosition(f->lastPosition(), QTextCursor::KeepAnchor);
            p.text = c.selectedText().left(60);
        } else {
            const QTextBlock b = it.currentBlock();
            r = layout->blockBoundingRect(b);
            // where its lines really are: a line pushed to the next page moves, the block's
            // rectangle does not
            if (const QTextLayout* tl = b.layout(); tl && tl->lineCount() > 0) {
                const QTextLine first = tl->lineAt(0), last = tl->lineAt(tl->lineCount() - 1);
                r = QRectF(r.left(), tl->position().y() + first.y(), r.width(),
                           last.y() + last.height() - first.y());
            }
            p.text = b.text().left(60);
            if (b.blockFormat().headingLevel() > 0)
                p.kind = PagePiece::Heading;
            else if (b.text().contains(QChar::ObjectReplacementCharacter))
                p.kind = PagePiece::Figure;
            if (b.text().trimmed().isEmpty() && p.kind == PagePiece::Text) continue; // spacing
        }
        if (r.height() <= 0) continue;
        p.top = r.top();
        p.bottom = r.bottom();
        p.firstPage = page(p.top);
        p.lastPage = page(std::max(p.top, p.bottom - 1));
        out.push_back(p);
    }
    return out;
}

namespace {

void breakBefore(QTextDocument& d, double y) {
    for (auto it = d.rootFrame()->begin(); !it.atEnd(); ++it) {
        if (QTextFrame* f = it.currentFrame()) {
            if (std::abs(d.documentLayout()->frameBoundingRect(f).top() - y) < 0.5) {
                QTextFrameFormat ff = f->frameFormat();
                ff.setPageBreakPolicy(QTextFormat::PageBreak_AlwaysBefore);
                f->setFrameFormat(ff);
                return;
            }
        } else if (const QTextLayout* tl = it.currentBlock().layout();
                   tl && tl->lineCount() > 0 &&
                   std::abs(tl->position().y() + tl->lineAt(0).y() - y) < 0.5) {
            QTextCursor c(it.currentBlock());
            QTextBlockFormat bf = it.currentBlock().blockFormat();
            bf.setPageBreakPolicy(QTextFormat::PageBreak_AlwaysBefore);
            c.setBlockFormat(bf);
            return;
        }
    }
}

} // namespace

int paginateReport(QTextDocument& d, const QSizeF& page) {
    d.setPageSize(page);
    QTextFrameFormat root = d.rootFrame()->frameFormat();
    root.setMargin(2.0 / 2.54 * 96); // 2 cm
    d.rootFrame()->setFrameFormat(root);
    const double usable = page.height() - 2 * root.margin();
    constexpr double kLines = 60; // a heading keeps at least this much of its text with it
    for (int pass = 0; pass < 200; ++pass) {
        const std::vector<PagePiece> pieces = pagePieces(d);
        double moveAt = -1;
        // the first of the headings right before piece i (i itself when none)
        auto chainStart = [&](std::size_t i) {
            while (i > 0 && pieces[i - 1].kind == PagePiece::Heading)
                --i;
            return i;
        };
        // a figure ends with its caption (a short paragraph right after it)
        auto endOf = [&](std::size_t i) {
            const bool captioned = pieces[i].kind == PagePiece::Figure && i + 1 < pieces.size() &&
                                   pieces[i + 1].kind == PagePiece::Text &&
                                   pieces[i + 1].bottom - pieces[i + 1].top <= kLines;
            return captioned ? pieces[i + 1].bottom : pieces[i].bottom;
        };
        for (std::size_t i = 0; i < pieces.size() && moveAt < 0; ++i) {
            const PagePiece& p = pieces[i];
            const bool whole = p.kind == PagePiece::Table || p.kind == PagePiece::Figure;
            if (p.kind == PagePiece::Heading) {
                if (i > 0 && pieces[i - 1].kind == PagePiece::Heading) continue; // one chain
                std::size_t j = i; // what the chain of headings introduces
                while (j + 1 < pieces.size() && pieces[j].kind == PagePiece::Heading)
                    ++j;
                const PagePiece& next = pieces[j];
                const bool nextWhole =
                    next.kind == PagePiece::Table || next.kind == PagePiece::Figure;
                const double end = nextWhole ? endOf(j) : std::min(next.bottom, next.top + kLines);
                const int endPage = int(std::max(p.top, end - 1) / page.height());
                if (endPage != p.firstPage && end - p.top <= usable) moveAt = p.top;
            } else if (whole && int(std::max(p.top, endOf(i) - 1) / page.height()) != p.firstPage &&
                       endOf(i) - pieces[chainStart(i)].top <= usable) {
                moveAt = pieces[chainStart(i)].top;
            }
        }
        if (moveAt < 0) break;
        breakBefore(d, moveAt);
    }
    return d.pageCount();
}

bool writeReportPdf(const qmpp::ReportDoc& doc, const QString& path, QString* error) {
    QSaveFile out(path); // the PDF appears whole or not at all
    if (!out.open(QIODevice::WriteOnly)) {
        if (error) *error = QObject::tr("%1: cannot be written (%2)").arg(path, out.errorString());
        return false;
    }
    {
        QPdfWriter pdf(&out);
        pdf.setPageSize(QPageSize(QPageSize::A4));
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0)); // the document keeps its own, per page
        pdf.setResolution(96);
        pdf.setTitle(QStringLiteral("QuickMerge++ report"));
        pdf.setCreator(QStringLiteral("QuickMerge++ Studio"));
        auto d = reportDocument(doc);
        d->documentLayout()->setPaintDevice(&pdf);
        paginateReport(*d, pdf.pageLayout().fullRectPixels(pdf.resolution()).size());
        d->print(&pdf);
    }
    if (!out.commit()) {
        if (error) *error = QObject::tr("%1: write failed (%2)").arg(path, out.errorString());
        return false;
    }
    return true;
}

} // namespace studio
