#include "reportpdf.h"

#include <QFile>
#include <QImage>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgRenderer>
#include <QTextDocument>
#include <QUrl>

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

bool writeReportPdf(const qmpp::ReportDoc& doc, const QString& path, QString* error) {
    QSaveFile out(path); // the PDF appears whole or not at all
    if (!out.open(QIODevice::WriteOnly)) {
        if (error) *error = QObject::tr("%1: cannot be written (%2)").arg(path, out.errorString());
        return false;
    }
    {
        QPdfWriter pdf(&out);
        pdf.setPageSize(QPageSize(QPageSize::A4));
        pdf.setResolution(96);
        pdf.setTitle(QStringLiteral("QuickMerge++ report"));
        pdf.setCreator(QStringLiteral("QuickMerge++ Studio"));
        auto d = reportDocument(doc);
        d->print(&pdf);
    }
    if (!out.commit()) {
        if (error) *error = QObject::tr("%1: write failed (%2)").arg(path, out.errorString());
        return false;
    }
    return true;
}

} // namespace studio
