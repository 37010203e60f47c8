// qmpp report DIR [--out FILE]: one self-contained HTML report of a run or sweep folder.
#include "commands.h"

#include "qmpp/htmlreport.h"
#include "qmpp/report.h"

#include <iostream>
#include <memory>

namespace qmpp::cli {

Runner addReport(CLI::App& app) {
    struct Args {
        std::string dir, out;
        bool quiet = false, force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand(
        "report", "One self-contained HTML report (tables, figures, checks) of a "
                  "`qmpp run` or `qmpp sweep` output folder");
    c->add_option("DIR", a->dir, "the output folder of qmpp run or qmpp sweep")->required();
    c->add_option("--out", a->out, "the HTML file to write (default DIR/report.html)");
    c->add_flag("--quiet", a->quiet, "print nothing on success");
    c->add_flag("--force", a->force, "replace an existing --out file");
    return [a] {
        requireReportTarget(a->dir, a->out, a->force); // before any work
        const ReportDoc doc = loadReport(a->dir);
        const std::string path = writeHtmlReport(doc, a->out);
        if (!a->quiet) {
            std::cout << "wrote " << path << " (" << doc.figures.size() << " figures; "
                      << (doc.verified() ? "verified" : "NOT verified") << ": ";
            int passed = 0;
            for (const auto& ch : doc.checks)
                passed += ch.ok;
            std::cout << passed << " of " << doc.checks.size() << " checks passed)\n";
            for (const auto& ch : doc.checks)
                if (!ch.ok) std::cout << "  FAILED: " << ch.what << " (" << ch.detail << ")\n";
        }
        return doc.verified() ? kOk : kRuntime;
    };
}

} // namespace qmpp::cli
