// A dense, C-ordered n-d array with a dtype: what .npy and .safetensors files hold.
// The engine itself works on float32 tokens; NdArray is the exchange format at the edges.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qmpp {

enum class DType { F16, BF16, F32, F64, I32, I64 };

std::size_t dtypeSize(DType t);
const char* dtypeName(DType t); // safetensors spelling: F16, BF16, F32, F64, I32, I64

struct NdArray {
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes; // native (little-endian) element bytes, C order

    std::int64_t numel() const;
    int ndim() const { return static_cast<int>(shape.size()); }
    std::string shapeString() const; // "[3, 4]"

    // Every element converted to float / double (F16 and BF16 decoded exactly).
    std::vector<float> toFloat() const;
    std::vector<double> toDouble() const;

    static NdArray fromFloat(const std::vector<float>& v, std::vector<std::int64_t> shape);
    static NdArray fromInt64(const std::vector<std::int64_t>& v, std::vector<std::int64_t> shape);
    static NdArray fromInt32(const std::vector<std::int32_t>& v, std::vector<std::int64_t> shape);
    // Converts float32 values to the given float dtype (F16/BF16 round to nearest even).
    static NdArray fromFloatAs(const std::vector<float>& v, std::vector<std::int64_t> shape,
                               DType dtype);

    template <class T> const T* as() const { return reinterpret_cast<const T*>(bytes.data()); }
};

float halfToFloat(std::uint16_t h);
std::uint16_t floatToHalf(float f);
float bf16ToFloat(std::uint16_t h);
std::uint16_t floatToBf16(float f);

} // namespace qmpp
