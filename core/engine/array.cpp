#include "qmpp/array.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace qmpp {

std::size_t dtypeSize(DType t) {
    switch (t) {
    case DType::F16:
    case DType::BF16:
        return 2;
    case DType::F32:
    case DType::I32:
        return 4;
    case DType::F64:
    case DType::I64:
        return 8;
    }
    return 0;
}

const char* dtypeName(DType t) {
    switch (t) {
    case DType::F16:
        return "F16";
    case DType::BF16:
        return "BF16";
    case DType::F32:
        return "F32";
    case DType::F64:
        return "F64";
    case DType::I32:
        return "I32";
    case DType::I64:
        return "I64";
    }
    return "?";
}

std::int64_t NdArray::numel() const {
    std::int64_t n = 1;
    for (auto s : shape)
        n *= s;
    return n;
}

std::string NdArray::shapeString() const {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i)
        os << (i ? ", " : "") << shape[i];
    os << ']';
    return os.str();
}

float halfToFloat(std::uint16_t h) {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    const int exp = (h >> 10) & 0x1f;
    std::uint32_t mant = h & 0x3ffu;
    std::uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: value = mant * 2^-24
            float f = std::ldexp(static_cast<float>(mant), -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | (static_cast<std::uint32_t>(exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

std::uint16_t floatToHalf(float f) {
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) // Inf or NaN
        return sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);
    if (absx >= 0x477ff000u) return sign | 0x7c00u; // rounds to >= 65520: overflow to Inf
    if (absx < 0x38800000u) {                       // result is subnormal or zero
        float a;
        std::memcpy(&a, &absx, 4);
        // nearbyint rounds half to even in the default rounding mode
        return sign | static_cast<std::uint16_t>(std::nearbyint(std::ldexp(a, 24)));
    }
    std::uint32_t mant = absx & 0x7fffffu;
    std::uint32_t exp = (absx >> 23) - 127 + 15;
    std::uint32_t h = (exp << 10) | (mant >> 13);
    const std::uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; // round to nearest even
    return sign | static_cast<std::uint16_t>(h);
}

float bf16ToFloat(std::uint16_t h) {
    std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

std::uint16_t floatToBf16(float f) {
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u); // round to nearest even
    return static_cast<std::uint16_t>(x >> 16);
}

template <class Out> static std::vector<Out> convertAll(const NdArray& a) {
    const std::int64_t n = a.numel();
    std::vector<Out> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        Out v{};
        switch (a.dtype) {
        case DType::F16:
            v = static_cast<Out>(halfToFloat(a.as<std::uint16_t>()[i]));
            break;
        case DType::BF16:
            v = static_cast<Out>(bf16ToFloat(a.as<std::uint16_t>()[i]));
            break;
        case DType::F32:
            v = static_cast<Out>(a.as<float>()[i]);
            break;
        case DType::F64:
            v = static_cast<Out>(a.as<double>()[i]);
            break;
        case DType::I32:
            v = static_cast<Out>(a.as<std::int32_t>()[i]);
            break;
        case DType::I64:
            v = static_cast<Out>(a.as<std::int64_t>()[i]);
            break;
        }
        out[static_cast<std::size_t>(i)] = v;
    }
    return out;
}

std::vector<float> NdArray::toFloat() const {
    return convertAll<float>(*this);
}
std::vector<double> NdArray::toDouble() const {
    return convertAll<double>(*this);
}

template <class T>
static NdArray fromRaw(DType dt, const std::vector<T>& v, std::vector<std::int64_t> shape) {
    NdArray a;
    a.dtype = dt;
    a.shape = std::move(shape);
    if (static_cast<std::int64_t>(v.size()) != a.numel())
        throw std::invalid_argument("NdArray: element count does not match shape " +
                                    a.shapeString());
    a.bytes.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(a.bytes.data(), v.data(), a.bytes.size());
    return a;
}

NdArray NdArray::fromFloat(const std::vector<float>& v, std::vector<std::int64_t> shape) {
    return fromRaw(DType::F32, v, std::move(shape));
}
NdArray NdArray::fromInt64(const std::vector<std::int64_t>& v, std::vector<std::int64_t> shape) {
    return fromRaw(DType::I64, v, std::move(shape));
}
NdArray NdArray::fromInt32(const std::vector<std::int32_t>& v, std::vector<std::int64_t> shape) {
    return fromRaw(DType::I32, v, std::move(shape));
}

NdArray NdArray::fromFloatAs(const std::vector<float>& v, std::vector<std::int64_t> shape,
                             DType dtype) {
    switch (dtype) {
    case DType::F32:
        return fromFloat(v, std::move(shape));
    case DType::F64:
        return fromRaw(DType::F64, std::vector<double>(v.begin(), v.end()), shape);
    case DType::F16:
    case DType::BF16: {
        std::vector<std::uint16_t> h(v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            h[i] = dtype == DType::F16 ? floatToHalf(v[i]) : floatToBf16(v[i]);
        return fromRaw(dtype, h, std::move(shape));
    }
    default:
        throw std::invalid_argument("fromFloatAs: not a float dtype");
    }
}

} // namespace qmpp
