// Branch-free float exp and erf that the compiler vectorizes (internal to core/model). The
// forward spends most of its non-product time in softmax and GELU; std::exp and std::erf are
// scalar library calls. Accuracy (tests/tst_model.cpp): exp within 2 ulp for x in [-87, 0],
// erf within 5e-7 absolute.
#pragma once

#include <cstdint>
#include <cstring>

namespace qmpp::fast {

// e^x for x <= 0 (inputs below -87 give e^-87, about 1.6e-38): Cephes' expf polynomial after
// the reduction x = n ln 2 + r, |r| <= ln 2 / 2, with n rounded by the 1.5 * 2^23 trick.
inline float expNonPositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float t = x * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    std::int32_t ni;
    std::memcpy(&ni, &t, sizeof ni);
    ni -= 0x4B400000;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    const float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    const std::int32_t bits = (ni + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// erf(x): a rational minimax approximation on [-4, 4] (erf(4) is 1 in float), odd numerator
// of degree 13 over an even denominator of degree 8.
inline float erf(float x) {
    x = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

// exact-form GELU: x/2 (1 + erf(x / sqrt 2))
inline float gelu(float x) {
    return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
}

} // namespace qmpp::fast
