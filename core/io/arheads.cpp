// AR-head weights from a .safetensors file with the seed module's state_dict names.
#include "qmpp/error.h"
#include "qmpp/inputs.h"
#include "qmpp/io.h"

#include <cmath>
#include <tuple>

namespace qmpp {

std::shared_ptr<const ArHeads> loadArHeads(const std::string& path, i64 d) {
    const TensorFile f = readSafetensors(path);
    auto h = std::make_shared<ArHeads>();
    h->d = d;
    h->source = path;
    const i64 hd = ArHeads::kHidden;
    auto get = [&](const std::string& name, std::vector<i64> shape, std::vector<float>& out) {
        const NdArray* a = f.find("ar_alignment." + name);
        if (!a) a = f.find(name);
        if (!a)
            throw InputError(path + ": missing tensor '" + name + "' (or 'ar_alignment." + name +
                             "')");
        if (a->shape != shape) {
            NdArray want;
            want.shape = shape;
            throw InputError(path + ": tensor '" + name + "' has shape " + a->shapeString() +
                             ", expected " + want.shapeString() + " for D = " + std::to_string(d));
        }
        if (a->dtype == DType::I32 || a->dtype == DType::I64)
            throw InputError(path + ": tensor '" + name + "' must be floating point");
        out = a->toFloat();
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!std::isfinite(out[i]))
                throw InputError(path + ": tensor '" + name + "' holds a non-finite value at " +
                                 std::to_string(i));
    };
    for (const auto& [pre, w1, b1, w2, b2] :
         {std::tuple{"forward_ar", &h->fw1, &h->fb1, &h->fw2, &h->fb2},
          std::tuple{"backward_ar", &h->bw1, &h->bb1, &h->bw2, &h->bb2}}) {
        const std::string p = pre;
        get(p + ".0.weight", {hd, d}, *w1);
        get(p + ".0.bias", {hd}, *b1);
        get(p + ".2.weight", {d, hd}, *w2);
        get(p + ".2.bias", {d}, *b2);
    }
    return h;
}

} // namespace qmpp
