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
Runner addEval(CLI::App& app);

// Strict validators (CLI11 would wrap "-1" to 2^64 - 1 in an unsigned option and take 0 as a
// value where it means "not given"): each returns CLI11's usage error, exit 2.
// --seed: decimal digits only, at most 2^64 - 1.
inline CLI::Validator seedValidator() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            const std::string max = "18446744073709551615";
            if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
                return "a seed is a whole number from 0 to " + max + ", got '" + s + "'";
            const std::string digits = s.substr(std::min(s.find_first_not_of('0'), s.size() - 1));
            if (digits.size() > max.size() || (digits.size() == max.size() && digits > max))
                return "a seed is at most " + max + " (2^64 - 1), got " + s;
            return {};
        },
        "SEED");
}
// A count that must be at least `lo` (`what` names it in the message).
inline CLI::Validator atLeast(long long lo, const std::string& what) {
    return CLI::Validator(
        [lo, what](std::string& s) -> std::string {
            long long v = 0;
            if (!CLI::detail::lexical_cast(s, v)) return what + " must be a whole number, got " + s;
            if (v < lo) return what + " must be at least " + std::to_string(lo) + ", got " + s;
            return {};
        },
        "INT");
}

// Exit codes of the CLI contract.
enum Exit { kOk = 0, kUsage = 2, kBadInput = 3, kRuntime = 4, kSlower = 5 };

} // namespace qmpp::cli
