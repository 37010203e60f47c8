// What the studio writes: the CLI's output folder and report, the export folder dialog, and
// the current view as a `qmpp run` command line.
#pragma once

#include <functional>

#include "runner.h"

#include "qmpp/inputs.h"

#include <QString>

class QWidget;

namespace studio {

// Asks for an export folder. A folder that does not exist yet is accepted (it is created by
// the export); one that holds results asks whether to replace them. False: cancelled.
bool chooseExportFolder(QWidget* parent, const QString& title, QString& dir, bool& force);
// Why `dir` cannot take an export (empty: it can): a file, or results without `force`.
QString exportFolderProblem(const QString& dir, bool force);

// The outputs of the run shown (the CLI's files, for batch item 0 of a batch) into `dir`.
bool exportResults(const QString& dir, bool force, const RunOutput& out, const StudioInput& in,
                   const qmpp::InputOptions& options, QString* error);
// The same plus report.html (the CLI's `qmpp report`) and report.pdf (printed by Qt).
// `extra(dir)`, when given, writes more result folders (the Model page's model/ and
// model-sweep/) before the report reads the folder.
bool exportReport(const QString& dir, bool force, const RunOutput& out, const StudioInput& in,
                  const qmpp::InputOptions& options, QString* error,
                  const std::function<void(const QString&)>& extra = {});

// The `qmpp run` command that reproduces the view: the input with its options, and every
// parameter (a shell-quoted single line; the output folder is `out`).
QString cliCommand(const QString& inputPath, const qmpp::InputOptions& options,
                   const qmpp::MergeParams& params, const QString& out = QStringLiteral("out"));

} // namespace studio
