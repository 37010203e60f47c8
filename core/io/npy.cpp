// .npy reader and writer (format versions 1.0, 2.0 and 3.0).
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

namespace qmpp {

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& what) {
    throw InputError(name + ": not a valid .npy file: " + what);
}

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct HeaderParser {
    const std::string& s;
    const std::string& name;
    std::size_t p = 0;

    void ws() {
        while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p])))
            ++p;
    }
    bool eat(char c) {
        ws();
        if (p < s.size() && s[p] == c) {
            ++p;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c))
            bad(name, std::string("header: expected '") + c + "' at offset " + std::to_string(p));
    }
    std::string str() {
        ws();
        if (p >= s.size() || (s[p] != '\'' && s[p] != '"')) bad(name, "header: expected a string");
        const char q = s[p++];
        const std::size_t e = s.find(q, p);
        if (e == std::string::npos) bad(name, "header: unterminated string");
        std::string out = s.substr(p, e - p);
        p = e + 1;
        return out;
    }
    std::string word() {
        ws();
        std::size_t b = p;
        while (p < s.size() && std::isalnum(static_cast<unsigned char>(s[p])))
            ++p;
        return s.substr(b, p - b);
    }
    std::vector<std::int64_t> tuple() {
        expect('(');
        std::vector<std::int64_t> dims;
        while (!eat(')')) {
            const std::string w = word();
            if (w.empty() || !std::all_of(w.begin(), w.end(), ::isdigit) || w.size() > 18)
                bad(name, "header: shape must be a tuple of non-negative integers");
            dims.push_back(std::stoll(w));
            if (!eat(',')) {
                expect(')');
                break;
            }
        }
        return dims;
    }
};

void swapBytes(std::vector<std::uint8_t>& b, std::size_t width) {
    if (width < 2) return;
    for (std::size_t i = 0; i + width <= b.size(); i += width)
        std::reverse(&b[i], &b[i + width]);
}

} // namespace

NdArray parseNpy(const std::uint8_t* data, std::size_t size, const std::string& name) {
    static const char magic[] = "\x93NUMPY";
    if (size < 10 || std::memcmp(data, magic, 6) != 0)
        bad(name, size < 10 ? "file is too short for the magic string"
                            : "wrong magic (expected \\x93NUMPY)");
    const int major = data[6];
    std::size_t headerLen = 0, pre = 0;
    if (major == 1) {
        headerLen = data[8] | (static_cast<std::size_t>(data[9]) << 8);
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) bad(name, "truncated header");
        headerLen = data[8] | (static_cast<std::size_t>(data[9]) << 8) |
                    (static_cast<std::size_t>(data[10]) << 16) |
                    (static_cast<std::size_t>(data[11]) << 24);
        pre = 12;
    } else {
        bad(name, "unsupported format version " + std::to_string(major));
    }
    if (headerLen > size - pre)
        bad(name, "truncated header (says " + std::to_string(headerLen) + " bytes, file has " +
                      std::to_string(size - pre) + ")");
    const std::string header(reinterpret_cast<const char*>(data + pre), headerLen);

    HeaderParser hp{header, name};
    std::string descr;
    bool fortran = false, haveDescr = false, haveShape = false, haveOrder = false;
    std::vector<std::int64_t> shape;
    hp.expect('{');
    while (!hp.eat('}')) {
        const std::string key = hp.str();
        hp.expect(':');
        if (key == "descr") {
            hp.ws();
            if (hp.p < header.size() && header[hp.p] == '[')
                bad(name, "structured (record) dtypes are not supported");
            descr = hp.str();
            haveDescr = true;
        } else if (key == "fortran_order") {
            const std::string w = hp.word();
            if (w != "True" && w != "False") bad(name, "header: fortran_order must be True/False");
            fortran = w == "True";
            haveOrder = true;
        } else if (key == "shape") {
            shape = hp.tuple();
            haveShape = true;
        } else {
            bad(name, "header: unknown key '" + key + "'");
        }
        if (!hp.eat(',')) {
            hp.expect('}');
            break;
        }
    }
    hp.ws();
    if (hp.p != header.size()) // numpy's literal_eval refuses anything after the dict
        bad(name, "header: unexpected text after the dict at offset " + std::to_string(hp.p));
    if (!haveDescr || !haveShape || !haveOrder)
        bad(name, "header lacks 'descr', 'fortran_order' or 'shape'");
    if (fortran)
        throw InputError(name + ": Fortran-ordered arrays are not supported; save it with "
                                "numpy.ascontiguousarray first");
    if (descr.size() < 2) bad(name, "bad dtype '" + descr + "'");
    const char order = descr[0];
    const std::string kind = descr.substr(1);
    NdArray a;
    if (kind == "f2")
        a.dtype = DType::F16;
    else if (kind == "f4")
        a.dtype = DType::F32;
    else if (kind == "f8")
        a.dtype = DType::F64;
    else if (kind == "i4")
        a.dtype = DType::I32;
    else if (kind == "i8")
        a.dtype = DType::I64;
    else {
        std::string why = "unsupported dtype '" + descr + "'";
        if (kind[0] == 'O')
            why += " (object arrays hold Python objects, not numbers)";
        else if (kind[0] == 'c')
            why += " (complex numbers)";
        else if (kind[0] == 'b')
            why += " (booleans)";
        throw InputError(name + ": " + why + "; expected float16/32/64 or int32/64");
    }
    if (order != '<' && order != '>' && order != '|' && order != '=')
        bad(name, "bad byte order in dtype '" + descr + "'");
    a.shape = shape;
    // Element count, guarded against overflow before anything is allocated.
    std::uint64_t n = 1;
    for (auto d : shape) {
        if (d != 0 &&
            n > std::numeric_limits<std::uint64_t>::max() / 16 / static_cast<std::uint64_t>(d))
            bad(name, "shape " + a.shapeString() + " is too large");
        n *= static_cast<std::uint64_t>(d);
    }
    const std::uint64_t nbytes = n * dtypeSize(a.dtype);
    const std::size_t offset = pre + headerLen;
    if (nbytes > size - offset)
        throw InputError(name + ": truncated data: shape " + a.shapeString() + " needs " +
                         std::to_string(nbytes) + " bytes, the file holds " +
                         std::to_string(size - offset));
    a.bytes.assign(data + offset, data + offset + nbytes);
    if (order == '>') swapBytes(a.bytes, dtypeSize(a.dtype));
    return a;
}

NdArray readNpy(const std::string& path) {
    const auto bytes = readFileBytes(path);
    return parseNpy(bytes.data(), bytes.size(), path);
}

std::vector<std::uint8_t> encodeNpy(const NdArray& a) {
    std::string descr;
    switch (a.dtype) {
    case DType::F16:
        descr = "<f2";
        break;
    case DType::F32:
        descr = "<f4";
        break;
    case DType::F64:
        descr = "<f8";
        break;
    case DType::I32:
        descr = "<i4";
        break;
    case DType::I64:
        descr = "<i8";
        break;
    case DType::BF16:
        throw std::invalid_argument("bfloat16 cannot be stored in .npy");
    }
    std::string shape = "(";
    for (std::size_t i = 0; i < a.shape.size(); ++i)
        shape +=
            std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
    shape += ")";
    std::string header =
        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    // Pad so that the data starts at a multiple of 64 bytes; the header ends with '\n'.
    const bool v2 = header.size() + 11 > 65535;
    const std::size_t pre = v2 ? 12 : 10;
    const std::size_t total = ((pre + header.size() + 1 + 63) / 64) * 64;
    header.append(total - pre - header.size() - 1, ' ');
    header += '\n';
    std::vector<std::uint8_t> out = {
        0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(v2 ? 2 : 1), 0};
    const std::size_t hl = header.size();
    out.push_back(static_cast<std::uint8_t>(hl & 0xff));
    out.push_back(static_cast<std::uint8_t>((hl >> 8) & 0xff));
    if (v2) {
        out.push_back(static_cast<std::uint8_t>((hl >> 16) & 0xff));
        out.push_back(static_cast<std::uint8_t>((hl >> 24) & 0xff));
    }
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), a.bytes.begin(), a.bytes.end());
    return out;
}

void writeNpy(const std::string& path, const NdArray& a) {
    writeFileBytes(path, encodeNpy(a));
}

} // namespace qmpp
