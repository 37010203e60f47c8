#include "exports.h"

#include "reportpdf.h"

#include "qmpp/error.h"
#include "qmpp/export.h"
#include "qmpp/htmlreport.h"
#include "qmpp/io.h"
#include "qmpp/report.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMessageBox>
#include <QRegularExpression>

namespace studio {

QString exportFolderProblem(const QString& dir, bool force) {
    if (dir.isEmpty()) return QObject::tr("no folder given");
    try {
        qmpp::OutputDir::checkTarget(dir.toStdString(), force);
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

bool chooseExportFolder(QWidget* parent, const QString& title, QString& dir, bool& force) {
    // Qt's own dialog: it can make a new folder, and a typed name that does not exist yet is
    // taken as the folder to create (the export creates it)
    QFileDialog d(parent, title);
    d.setFileMode(QFileDialog::Directory);
    d.setOption(QFileDialog::ShowDirsOnly);
    d.setOption(QFileDialog::DontUseNativeDialog);
    d.setAcceptMode(QFileDialog::AcceptSave);
    d.setLabelText(QFileDialog::Accept, QObject::tr("Export here"));
    if (d.exec() != QDialog::Accepted || d.selectedFiles().isEmpty()) return false;
    dir = d.selectedFiles().first();
    force = false;
    const QString problem = exportFolderProblem(dir, false);
    if (problem.isEmpty()) return true;
    if (!QFileInfo(dir).isDir()) {
        QMessageBox::warning(parent, title, problem);
        return false;
    }
    if (QMessageBox::question(parent, QObject::tr("Replace results?"),
                              QObject::tr("%1 already holds results. Replace them?").arg(dir)) !=
        QMessageBox::Yes)
        return false;
    force = true;
    return true;
}

bool exportResults(const QString& dir, bool force, const RunOutput& out, const StudioInput& in,
                   const qmpp::InputOptions& options, QString* error) {
    qmpp::RunRecord run;
    run.inputPath = in.path.toStdString();
    run.inputOptions = options;
    if (run.inputOptions.batch < 0) run.inputOptions.batch = in.loaded->batched ? 0 : -1;
    qmpp::LoadedInput one = *in.loaded; // the studio shows (and exports) item 0
    one.items.resize(1);
    one.batched = false;
    run.input = &one;
    run.params = out.params;
    run.results = {out.result};
    try {
        qmpp::exportRun(dir.toStdString(), force, run);
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    return true;
}

bool exportReport(const QString& dir, bool force, const RunOutput& out, const StudioInput& in,
                  const qmpp::InputOptions& options, QString* error,
                  const std::function<void(const QString&)>& extra) {
    if (!exportResults(dir, force, out, in, options, error)) return false;
    try {
        if (extra) extra(dir);
        const qmpp::ReportDoc doc = qmpp::loadReport(dir.toStdString());
        qmpp::writeHtmlReport(doc);
        QString why;
        if (!writeReportPdf(doc, QDir(dir).filePath("report.pdf"), &why))
            throw std::runtime_error(why.toStdString());
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    return true;
}

namespace {

QString shellQuote(const QString& s) {
    static const QRegularExpression plain(QStringLiteral("^[A-Za-z0-9_./:=+,@%-]+$"));
    if (plain.match(s).hasMatch()) return s;
    return QLatin1Char('\'') + QString(s).replace(QLatin1String("'"), QLatin1String("'\\''")) +
           QLatin1Char('\'');
}

QString number(double v) {
    return QString::number(v, 'g', 10);
}

} // namespace

QString cliCommand(const QString& inputPath, const qmpp::InputOptions& o,
                   const qmpp::MergeParams& p, const QString& out) {
    const std::string input = inputPath.toStdString();
    QStringList a{QStringLiteral("qmpp"), QStringLiteral("run"), shellQuote(inputPath),
                  QStringLiteral("--out"), shellQuote(out)};
    auto add = [&a](const char* flag, const QString& value) {
        a << QString::fromLatin1(flag) << shellQuote(value);
    };
    const bool image = qmpp::inputKind(input) == qmpp::InputKind::Image;
    if (image) add("--patch", QString::number(o.patch));
    if (!o.projection.empty()) add("--projection", QString::fromStdString(o.projection));
    if (!o.key.empty()) add("--key", QString::fromStdString(o.key));
    // the tensors the view uses, named: the CLI attaches a .safetensors file's own ones unless
    // told otherwise, so a view without them says --tokens-only
    const bool own = qmpp::fileExtension(input) == ".safetensors";
    if (own && o.hidden != input && o.attention != input) a << QStringLiteral("--tokens-only");
    if (!o.hidden.empty()) {
        if (o.hidden != input) add("--hidden-states", QString::fromStdString(o.hidden));
        if (!o.hiddenKey.empty()) add("--hidden-key", QString::fromStdString(o.hiddenKey));
    }
    if (!o.attention.empty()) {
        if (o.attention != input) add("--attention", QString::fromStdString(o.attention));
        if (!o.attentionKey.empty()) add("--attention-key", QString::fromStdString(o.attentionKey));
    }
    if (!o.labels.empty()) add("--labels", QString::fromStdString(o.labels));
    if (o.batch >= 0) add("--batch", QString::number(o.batch));
    if (p.k > 0)
        add("--tokens", QString::number(p.k));
    else
        add("--budget", number(p.budget));
    add("--temperature", number(p.temperature));
    add("--epsilon", number(p.epsilon));
    add("--gamma", number(p.gamma));
    add("--alpha", number(p.alpha));
    add("--layers", QString::number(p.layers));
    add("--refine", QString::number(p.refine));
    add("--seed", QString::number(qulonglong(p.seed)));
    add("--method", QString::fromLatin1(qmpp::toString(p.method)));
    add("--cluster", QString::fromLatin1(qmpp::toString(p.cluster)));
    add("--backend", QString::fromLatin1(qmpp::toString(p.backend)));
    if (p.precision == qmpp::Precision::FP16) add("--precision", QStringLiteral("fp16"));
    return a.join(QLatin1Char(' '));
}

} // namespace studio
