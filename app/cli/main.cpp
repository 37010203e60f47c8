// qmpp: the headless QuickMerge++ CLI. Exit codes: 0 ok, 2 usage, 3 bad input or unwritable output,
// 4 runtime failure, 5 bench --baseline found a case slower beyond noise.
#include "commands.h"

#include "qmpp/engine.h"
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <csignal>
#include <iostream>
#include <new>

int main(int argc, char** argv) {
    using namespace qmpp::cli;
    // Past a file-size limit (ulimit -f) a write fails with EFBIG and is reported, like a full
    // disk, instead of the process being killed mid-export.
    std::signal(SIGXFSZ, SIG_IGN);
    // Ctrl-C, SIGTERM or SIGHUP mid-run remove the temporary folder and files (no .qmpp-XXXXXX
    // or partial overlay.avi is left beside --out)
    qmpp::installSignalCleanup();
    CLI::App app{"qmpp " + std::string(qmpp::kVersion) +
                     " — QuickMerge++ token merging: saliency by attention entropy, Gumbel-softmax "
                     "mask, cosine clustering, saliency-weighted merge.",
                 "qmpp"};
    app.set_version_flag("--version", std::string("qmpp ") + qmpp::kVersion);
    app.require_subcommand(1);
    app.footer("Exit codes: 0 ok, 2 usage error, 3 bad input or an output that cannot be written, "
               "4 runtime\n"
               "failure, 5 `bench --baseline` found a case slower beyond noise.\n"
               "Run `qmpp COMMAND --help` for a command's options.");
    const Runner run = addRun(app);
    const Runner tokenize = addTokenize(app);
    const Runner bench = addBench(app);
    const Runner check = addCheck(app);
    const Runner sweep = addSweep(app);
    const Runner report = addReport(app);
    const Runner eval = addEval(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "qmpp: usage error: " << e.what() << "\n(see qmpp --help)\n";
        return kUsage;
    }
    try {
        if (app.got_subcommand("run")) return run();
        if (app.got_subcommand("tokenize")) return tokenize();
        if (app.got_subcommand("bench")) return bench();
        if (app.got_subcommand("check")) return check();
        if (app.got_subcommand("sweep")) return sweep();
        if (app.got_subcommand("report")) return report();
        if (app.got_subcommand("eval")) return eval();
    } catch (const qmpp::UsageError& e) {
        std::cerr << "qmpp: usage error: " << e.what() << "\n";
        return kUsage;
    } catch (const qmpp::InputError& e) {
        std::cerr << "qmpp: bad input: " << e.what() << "\n";
        return kBadInput;
    } catch (const std::bad_alloc&) {
        std::cerr << "qmpp: runtime failure: out of memory\n";
        return kRuntime;
    } catch (const std::exception& e) {
        std::cerr << "qmpp: runtime failure: " << e.what() << "\n";
        return kRuntime;
    }
    return kUsage;
}
