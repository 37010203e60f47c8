// A studio project file (.qmpp, JSON): the input with its options, the parameters, the
// overlays, the page and the A/B pin, so that a view can be saved and reopened whole.
#pragma once

#include "qmpp/inputs.h"
#include "qmpp/types.h"

#include <QByteArray>
#include <QString>

#include <optional>
#include <utility>
#include <vector>

namespace studio {

struct ProjectState {
    QString input;              // absolute path
    qmpp::InputOptions options; // patch, tensor keys, attached files, batch item, labels
    qmpp::MergeParams params;
    std::vector<std::pair<bool, double>> overlays; // on, opacity; in Overlay order
    QString page;                                  // "canvas", "tokens", "compare", "profiler"
    std::optional<qmpp::MergeParams> pin;          // the pinned result's parameters
};

// The file's text. Paths are written as given (absolute).
QByteArray projectJson(const ProjectState& s);
// Reads a project; std::runtime_error naming `path` and the problem for anything wrong (not
// JSON, another format or version, a missing or mistyped field, an unknown method name).
ProjectState readProject(const QString& path);

} // namespace studio
