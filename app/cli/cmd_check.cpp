// qmpp check: every kernel x version x precision against the float64 CPU reference.
#include "commands.h"

#include "qmpp/check.h"
#include "qmpp/error.h"

#include <fstream>
#include <iostream>
#include <memory>

namespace qmpp::cli {

Runner addCheck(CLI::App& app) {
    auto o = std::make_shared<CheckOptions>();
    CLI::App* c = app.add_subcommand(
        "check",
        "Verify every kernel (or, without a GPU, the CPU steps) against float64 references");
    c->add_option("--backend", o->backend, "all | cpu | cuda-basic | cuda (default all)")
        ->check(CLI::IsMember({"all", "cpu", "cuda-basic", "cuda"}));
    c->add_flag("--quick", o->quick, "small sizes only (for sanitizer runs)");
    c->add_option("--photo", o->photoTokens,
                  "a real photo's tokens [N,D] .npy (default: the bundled sample's)");
    c->add_option("--seed", o->seed, "random seed (default: fresh, printed)")
        ->check(seedValidator());
    return [o] {
        if (o->photoTokens.empty()) {
            const std::string bundled =
                std::string(QMPP_SOURCE_DIR) + "/resources/samples/chelsea_tokens.npy";
            if (std::ifstream(bundled).good()) o->photoTokens = bundled;
        }
        const auto rows = runChecks(*o, std::cout);
        for (const auto& r : rows)
            if (!r.pass) return kRuntime;
        return rows.empty() ? kRuntime : kOk;
    };
}

} // namespace qmpp::cli
