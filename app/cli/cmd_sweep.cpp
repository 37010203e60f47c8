// qmpp sweep INPUT --methods ... --budgets ... --out DIR: each metric vs budget for each method.
#include "commands.h"

#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"
#include "qmpp/report.h"
#include "qmpp/sweep.h"

#include <iomanip>
#include <iostream>
#include <memory>

namespace qmpp::cli {

Runner addSweep(CLI::App& app) {
    struct Args {
        std::string input, out, backend = "auto", precision = "fp32", cluster = "seeded";
        std::vector<std::string> methods = {"quickmerge", "tome", "topk", "random"};
        std::vector<double> budgets = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
        MergeParams p;
        InputOptions in;
        bool force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand(
        "sweep",
        "Each metric vs budget for each method on INPUT: sweep.csv, sweep.json, sweep.png in DIR");
    c->add_option("INPUT", a->input, "tokens (.npy/.safetensors [N,D]) or an image")->required();
    c->add_option("--out", a->out, "output folder (created; refused if it holds results)")
        ->required();
    c->add_option("--methods", a->methods,
                  "comma-separated: quickmerge,tome,topk,random (default all)")
        ->delimiter(',')
        ->check(CLI::IsMember({"quickmerge", "tome", "topk", "random"}));
    c->add_option("--budgets", a->budgets,
                  "comma-separated budgets in (0, 1] (default 0.05,0.1,0.2,...,1)")
        ->delimiter(',');
    c->add_option("--temperature", a->p.temperature,
                  "Gumbel-softmax temperature tau (default 0.1)");
    c->add_option("--layers", a->p.layers, "multi-scale layers L (default 1)");
    c->add_option("--refine", a->p.refine, "refinement rounds R (default 3)");
    c->add_option("--seed", a->p.seed, "Philox seed (default 0)")->check(seedValidator());
    c->add_option("--cluster", a->cluster, "seeded | agglomerative | reference (default seeded)")
        ->check(CLI::IsMember({"seeded", "agglomerative", "reference"}));
    c->add_option("--patch", a->in.patch, "image patch size P (default 16)");
    c->add_option("--key", a->in.key, "tensor name inside a .safetensors INPUT");
    c->add_option("--batch", a->in.batch, "item I of a [B,N,D] input (default 0)")
        ->check(atLeast(0, "the item index"));
    c->add_option("--backend", a->backend, "auto | cpu | cuda-basic | cuda (default auto)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda-basic", "cuda"}));
    c->add_option("--precision", a->precision, "fp32 | fp16 (default fp32)")
        ->check(CLI::IsMember({"fp32", "fp16"}));
    c->add_flag("--force", a->force, "replace results already in DIR");
    return [a] {
        MergeParams p = a->p;
        parse(a->cluster, p.cluster);
        parse(a->backend, p.backend);
        parse(a->precision, p.precision);
        std::vector<Method> methods;
        for (const auto& m : a->methods) {
            Method x;
            parse(m, x);
            methods.push_back(x);
        }
        for (double b : a->budgets)
            if (!(b > 0 && b <= 1))
                throw UsageError("--budgets: each budget must lie in (0, 1], got " +
                                 std::to_string(b));
        OutputDir::checkTarget(a->out, a->force);
        InputOptions opt = a->in;
        attachOwnTensors(a->input, opt); // a .safetensors input's own attention, as `run`
        const LoadedInput loaded = loadInput(a->input, opt); // a batch without --batch: item 0
        const TokenSet& t = loaded.items.front();
        std::cout << "sweeping " << methods.size() << " method(s) x " << a->budgets.size()
                  << " budget(s) on " << a->input << " (N = " << t.n << ", D = " << t.d << ")"
                  << std::flush;
        const std::vector<SweepRow> rows =
            runSweep(t, p, methods, a->budgets, [](i64 done, i64 total) {
                if (done == total || done % 4 == 0) std::cout << "." << std::flush;
                return true;
            });
        std::cout << "\n";

        OutputDir out(a->out, a->force);
        std::vector<std::string> files = {"sweep.csv", "sweep.json"};
        const std::string csv = sweepCsv(rows);
        writeFileBytes(out.path("sweep.csv"), std::vector<std::uint8_t>(csv.begin(), csv.end()));
        nlohmann::ordered_json j;
        j["tool"] = "qmpp sweep";
        j["version"] = kVersion;
        j["input"] = {{"path", a->input}, {"n", t.n}, {"d", t.d}};
        j["parameters"] = paramsJson(p, 0);
        for (const char* swept : {"k", "budget", "method"})
            j["parameters"].erase(swept);
        j["methods"] = a->methods;
        j["budgets"] = a->budgets;
        j["rows"] = sweepJson(rows);
        const std::string text = j.dump(2) + "\n";
        writeFileBytes(out.path("sweep.json"), std::vector<std::uint8_t>(text.begin(), text.end()));
        if (haveImageSupport()) {
            writeSweepPlot(rows, out.path("sweep.png"));
            files.push_back("sweep.png");
        }
        out.commit();
        std::cout << std::fixed << std::setprecision(4);
        for (const auto& r : rows)
            if (r.budget == a->budgets.front() || r.budget == a->budgets.back())
                std::cout << "  " << std::left << std::setw(11) << r.method << std::right
                          << " budget " << std::setprecision(2) << r.budget << std::setprecision(4)
                          << "  K " << std::setw(6) << r.k << "  reconstruction_error "
                          << r.metrics.reconstructionError << "  mean_cosine "
                          << r.metrics.meanCosine << "\n";
        std::cout << "  outputs in " << a->out << ":";
        for (const auto& f : files)
            std::cout << " " << f;
        std::cout << "\n";
        return kOk;
    };
}

} // namespace qmpp::cli
