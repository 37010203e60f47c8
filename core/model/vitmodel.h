// The loaded weights, packed for the CPU's products (internal to core/model).
#pragma once

#include "qmpp/ops.h"
#include "qmpp/vit.h"

namespace qmpp {

// y [M, out] = x [M, in] W^T + b, with W's rows packed once at load.
struct Linear {
    i64 in = 0, out = 0;
    PackedRows w;
    std::vector<float> b;
};

struct Norm {
    std::vector<float> w, b;
};

struct VitBlock {
    Norm norm1, norm2;
    Linear qkv, proj, fc1, fc2;
};

struct VitModel {
    VitConfig cfg;
    Linear patch;                // [D, C*P*P]
    std::vector<float> cls, pos; // [D], [(1 + N) * D]
    std::vector<VitBlock> blocks;
    Norm norm;
    Linear head;
};

} // namespace qmpp
