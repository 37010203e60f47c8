// Gumbel-softmax mask and top-K: references computed inline in double, and the fused launch.
#include "harness.h"

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
void KernelCase::checkGumbelKernels() {
    // gumbel + top-K on saliency in [0, 1] and Philox uniforms
    if (!skip(kk::Kernel::Gumbel)) {
        std::uniform_real_distribution<float> u01(0.0f, 1.0f);
        std::vector<float> s(static_cast<std::size_t>(n));
        for (auto& e : s)
            e = u01(rng);
        const auto uh = philoxUniforms(n, rng());
        kk::DeviceBuffer<float> ds, du, keys, pi, mass, scratch;
        ds.upload(s.data(), s.size());
        du.upload(uh.data(), uh.size());
        poison(keys, n);
        poison(pi, n);
        poison(mass, n);
        scratch.resize(2);
        kk::GumbelParams gp = kk::gumbelParams(ds.get(), du.get(), static_cast<int>(n), 0.3f, 0.01f,
                                               keys.get(), pi.get(), mass.get(), scratch.get());
        kk::gumbel(gp, v, nullptr);
        keysHost = fetch(keys, n);
        const auto piH = fetch(pi, n), massH = fetch(mass, n);
        std::vector<double> rk(static_cast<std::size_t>(n)), rp(rk.size()), rm(rk.size());
        double mx = -INFINITY, z = 0;
        for (i64 i = 0; i < n; ++i)
            mx = std::max(mx, (rk[i] = s[i] - std::log(-std::log(double(uh[i])))) / 0.3);
        for (i64 i = 0; i < n; ++i)
            z += std::exp(rk[i] / 0.3 - mx);
        for (i64 i = 0; i < n; ++i) {
            rp[i] = std::exp(rk[i] / 0.3 - mx) / z;
            rm[i] = rp[i] * s[i] + (1 - rp[i]) * 0.01;
        }
        // pi (against a tighter absolute floor) and mass, merged into c
        auto addPiMass = [&](Cmp& c, const std::vector<float>& piGot,
                             const std::vector<float>& massGot) {
            const Cmp c2 = compare(piGot.data(), rp.data(), rp.size(), Tol{1e-7, tol.rtol * 10});
            const Cmp c3 = compare(massGot.data(), rm.data(), rm.size(), tol);
            c.maxRel = std::max({c.maxRel, c2.maxRel / 10, c3.maxRel});
            c.pass = c.pass && c2.pass && c3.pass;
            if (c.note.empty())
                c.note = !c2.note.empty()  ? "pi: " + c2.note
                         : c3.note.empty() ? ""
                                           : "mass: " + c3.note;
        };
        Cmp c = compare(keysHost.data(), rk.data(), rk.size(), tol);
        addPiMass(c, piH, massH);
        pr.add("gumbel", vn, "fp32", in, c, tol);
        if (v == kk::Version::Optimized) { // the fused launch: the same keys, pi, mass and top-K
            kk::DeviceBuffer<int> sel, idx, fo;
            sel.resize(n);
            poison(idx, k);
            poison(fo, n);
            poison(keys, n);
            poison(pi, n);
            poison(mass, n);
            kk::TopKParams tp = kk::topKParams(keys.get(), static_cast<int>(n), static_cast<int>(k),
                                               sel.get(), idx.get(), fo.get());
            kk::gumbelTopK(gp, tp, v, nullptr);
            Cmp f;
            addPiMass(f, fetch(pi, n), fetch(mass, n));
            if (fetch(keys, n) != keysHost)
                f = {f.maxRel, false, "keys differ from the gumbel kernel's"};
            const auto ref = topK(std::vector<double>(keysHost.begin(), keysHost.end()), k);
            const auto got = fetch(idx, k);
            if (!std::equal(got.begin(), got.end(), ref.begin()))
                f = {f.maxRel, false, "top-K indices differ"};
            else if (fetch(fo, n) != founderMap(ref, n))
                f = {f.maxRel, false, "founderOf differs"};
            pr.add("gumbel_topk", vn, "fp32", in, f, tol);
        }
    }
}

void KernelCase::checkTopKKernel() {
    if (!skip(kk::Kernel::TopK) && !keysHost.empty()) {
        // the Gumbel keys, then the same keys rounded to 0.5 (many ties, broken by index)
        std::vector<float> tied = keysHost;
        for (auto& e : tied)
            e = std::round(e * 2) / 2;
        for (const auto* keysIn : {&keysHost, &tied}) {
            kk::DeviceBuffer<float> keys;
            keys.upload(keysIn->data(), keysIn->size());
            kk::DeviceBuffer<int> sel, idx, fo;
            sel.resize(n);
            poison(idx, k);
            poison(fo, n);
            kk::TopKParams tp = kk::topKParams(keys.get(), static_cast<int>(n), static_cast<int>(k),
                                               sel.get(), idx.get());
            if (v == kk::Version::Optimized) tp.founderOf = fo.get();
            kk::topK(tp, v, nullptr);
            const auto got = fetch(idx, k);
            const auto ref = topK(std::vector<double>(keysIn->begin(), keysIn->end()), k);
            bool same = std::equal(got.begin(), got.end(), ref.begin());
            std::string note = same ? "" : "indices differ";
            if (same && tp.founderOf) {
                if (fetch(fo, n) != founderMap(ref, n)) {
                    same = false;
                    note = "founderOf differs";
                }
            }
            const std::string name = in.name + (keysIn == &tied ? " (ties)" : "");
            pr.row({"topk", vn, "fp32", name, n, d, same ? 0.0 : 1.0, 0, 0, same, note});
        }
    }
}
#endif

} // namespace qmpp::check
