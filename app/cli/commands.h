// The qmpp subcommands. Each registers its options on the CLI11 app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace qmpp::cli {

// Registers a subcommand; the returned callable runs it and returns the exit code.
using Runner = std::function<int()>;
Runner addRun(CLI::App& app);
Runner addTokenize(CLI::App& app);
Runner addBench(CLI::App& app);
Runner addCheck(CLI::App& app);
Runner addSweep(CLI::App& app);
Runner addReport(CLI::App& app);

// Exit codes of the CLI contract.
enum Exit { kOk = 0, kUsage = 2, kBadInput = 3, kRuntime = 4 };

} // namespace qmpp::cli
