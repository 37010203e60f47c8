// Reading a model's tensors with every problem named (internal to core/model): the ViT's loader
// and the language model's share it.
#pragma once

#include "vitmodel.h"

#include "qmpp/error.h"
#include "qmpp/io.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace qmpp {

struct WeightReader {
    std::string file;
    const TensorFile& tf;
    std::string missingHint; // what a missing tensor's message adds: where such files come from
    std::set<std::string> used;

    [[noreturn]] void fail(const std::string& what) const { throw InputError(file + ": " + what); }
    // The tensor, or null; not marked as used.
    const NdArray* find(const std::string& name) const {
        for (const auto& [n, a] : tf.tensors)
            if (n == name) return &a;
        return nullptr;
    }
    const NdArray& get(const std::string& name) {
        const NdArray* a = find(name);
        if (!a) fail("missing tensor '" + name + "' (" + missingHint + ")");
        used.insert(name);
        return *a;
    }
    std::vector<float> values(const std::string& name, const std::vector<i64>& shape) {
        const NdArray& a = get(name);
        if (a.shape != shape) {
            NdArray want;
            want.shape = shape;
            fail("tensor '" + name + "' has shape " + a.shapeString() + ", expected " +
                 want.shapeString());
        }
        if (a.dtype == DType::I32 || a.dtype == DType::I64)
            fail("tensor '" + name + "' holds integers (" + dtypeName(a.dtype) +
                 "); weights are F32, F16, BF16 or F64");
        std::vector<float> v = a.toFloat();
        for (float f : v)
            if (!std::isfinite(f)) fail("tensor '" + name + "' holds a NaN or infinite value");
        return v;
    }
    Linear linear(const std::string& weight, const std::string& bias, i64 out, i64 in) {
        Linear l;
        l.in = in;
        l.out = out;
        const std::vector<float> w = values(weight, {out, in});
        l.w = packRows(w.data(), out, in);
        l.b = values(bias, {out});
        return l;
    }
    Linear linear(const std::string& base, i64 out, i64 in) {
        return linear(base + ".weight", base + ".bias", out, in);
    }
    Norm norm(const std::string& base, i64 d, double eps = 1e-6) {
        Norm n{values(base + ".weight", {d}), values(base + ".bias", {d})};
        n.eps = eps;
        return n;
    }
    // Every tensor of the file was read: anything else is not part of the model.
    void requireAllUsed(const std::string& what) const {
        for (const auto& [n, a] : tf.tensors)
            if (!used.count(n)) fail("unknown tensor '" + n + "' (" + what + ")");
    }
};

} // namespace qmpp
