// Branch-free float exp and erf, written once for a float and for 8 floats (GCC's vector
// extension), internal to core/model. The forward spends most of its non-product time in
// softmax and GELU; std::exp and std::erf are scalar library calls, and the auto-vectorizer
// leaves the clamps and bit tricks scalar. Accuracy (tests/tst_model.cpp): exp within 3e-7
// relative for x in [-87, 0], erf within 5e-7 absolute.
#pragma once

#include <cstdint>
#include <cstring>

namespace qmpp::fast {

typedef float v8f __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));

template <class F> inline F splat(float c) {
    return F{} + c;
}
inline std::int32_t bitsOf(float f) {
    std::int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i;
}
inline v8i bitsOf(v8f f) {
    return (v8i)f;
} // a vector cast keeps the bits
inline float floatOf(std::int32_t i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
inline v8f floatOf(v8i i) {
    return (v8f)i;
}
template <class F> inline F maxOf(F a, F b) {
    return a > b ? a : b;
}
template <class F> inline F minOf(F a, F b) {
    return a < b ? a : b;
}

// e^x for x <= 0 (inputs below -87 give e^-87, about 1.6e-38): Cephes' expf polynomial after
// the reduction x = n ln 2 + r, |r| <= ln 2 / 2, with n rounded by the 1.5 * 2^23 trick.
template <class F> inline F expNonPositive(F x) {
    x = maxOf(x, splat<F>(-87.0f));
    const F t = x * 1.44269504088896341f + 12582912.0f;
    const F n = t - 12582912.0f;
    const auto ni = bitsOf(t) - 0x4B400000;
    const F r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    const F z = r * r;
    F p = splat<F>(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    return p * floatOf((ni + 127) << 23);
}

// erf(x): a rational minimax approximation on [-4, 4] (erf(4) is 1 in float), odd numerator
// of degree 13 over an even denominator of degree 8.
template <class F> inline F erf(F x) {
    x = minOf(maxOf(x, splat<F>(-4.0f)), splat<F>(4.0f));
    const F x2 = x * x;
    F p = splat<F>(-2.72614225801306e-10f);
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    F q = splat<F>(-1.45660718464996e-05f);
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

// exact-form GELU: x/2 (1 + erf(x / sqrt 2))
template <class F> inline F gelu(F x) {
    return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
}

inline v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store8(float* p, v8f v) {
    std::memcpy(p, &v, sizeof v);
}

} // namespace qmpp::fast
