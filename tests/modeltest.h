// Helpers shared by the model's tests (tst_model, tst_explain).
#pragma once

#include "qmpp/vit.h"

namespace qmpp::test {

inline HookParams hook(ModelMethod m, Schedule s, std::uint64_t seed = 0) {
    HookParams h;
    h.method = m;
    h.schedule = std::move(s);
    h.seed = seed;
    return h;
}

} // namespace qmpp::test
