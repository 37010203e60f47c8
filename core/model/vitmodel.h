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
    double eps = 1e-6; // timm's ViT; the language model's is 1e-5
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

// The CPU forward's layers (vitforward.cpp), shared with the language model (lm.cpp).
enum class Epilogue { Bias, BiasGelu, BiasAddTo };
// y [m, out] = norm(x) [m, in] W^T + b, with `norm` LayerNorm first when given. BiasGelu: then
// the exact GELU; BiasAddTo: y += that instead (the residual add). Rows split across the team.
void linear(const Linear& l, const float* x, i64 m, float* y, Epilogue ep = Epilogue::Bias,
            const Norm* norm = nullptr);
void layerNormRow(const Norm& n, const float* x, i64 d, float* y);
// One row of softmax in place; returns its entropy (nats) when asked.
double softmaxRow(float* z, i64 n, bool entropy);

} // namespace qmpp
