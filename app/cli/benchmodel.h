// qmpp bench --model (cmd_benchmodel.cpp).
#pragma once

#include "commands.h"

#include "qmpp/vit.h"

#include <string>
#include <vector>

namespace qmpp::cli {

struct BenchModelArgs {
    std::string model, json, backend = "cpu", precision = "fp32";
    std::vector<std::string> methods = {"none", "quickmerge", "tome", "topk", "random"};
    i64 batch = 64, heads = 0, r = 8;
    int repeats = 21;
};
int benchModel(const BenchModelArgs& a);

} // namespace qmpp::cli
