// .safetensors reader and writer: 8-byte little-endian header length, JSON header, raw data.
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace qmpp {

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& what) {
    throw InputError(name + ": not a valid .safetensors file: " + what);
}

bool parseDtype(const std::string& s, DType& out) {
    static const std::pair<const char*, DType> table[] = {
        {"F16", DType::F16}, {"BF16", DType::BF16}, {"F32", DType::F32},
        {"F64", DType::F64}, {"I32", DType::I32},   {"I64", DType::I64}};
    for (const auto& [k, v] : table)
        if (s == k) {
            out = v;
            return true;
        }
    return false;
}

constexpr std::uint64_t kMaxHeader = 100u * 1024u * 1024u; // as the reference implementation

} // namespace

const NdArray* TensorFile::find(const std::string& key) const {
    for (const auto& [k, v] : tensors)
        if (k == key) return &v;
    return nullptr;
}

namespace {

// The header length of a file of `size` bytes whose first 8 bytes are `data`, checked.
std::uint64_t headerLength(const std::uint8_t* data, std::uint64_t size, const std::string& name) {
    if (size < 8) bad(name, "file is shorter than the 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | data[i];
    if (n > kMaxHeader) bad(name, "header length " + std::to_string(n) + " exceeds 100 MB");
    if (n > size - 8)
        bad(name, "header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(size) + " bytes)");
    return n;
}

// `data` holds the first 8 + n bytes of a file of `size` bytes (all of it when withData);
// without data, the tensors come back with their dtype and shape but no bytes.
TensorFile parse(const std::uint8_t* data, std::uint64_t size, const std::string& name,
                 bool withData) {
    const std::uint64_t n = headerLength(data, size, name);
    const char* hb = reinterpret_cast<const char*>(data + 8);

    // Duplicate top-level keys are an error; nlohmann would silently keep the last one.
    std::set<std::string> seen;
    std::string duplicate;
    nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev,
                                               nlohmann::json& parsed) {
        if (ev == nlohmann::json::parse_event_t::key && depth == 1) {
            const auto k = parsed.get<std::string>();
            if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    nlohmann::json h;
    try {
        h = nlohmann::json::parse(hb, hb + n, cb);
    } catch (const nlohmann::json::exception& e) {
        bad(name, std::string("header is not JSON (") + e.what() + ")");
    }
    if (!duplicate.empty()) bad(name, "duplicate tensor name '" + duplicate + "'");
    if (!h.is_object()) bad(name, "header is not a JSON object");

    const std::uint64_t dataSize = size - 8 - n;
    const std::uint8_t* base = data + 8 + n;
    TensorFile f;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (auto it = h.begin(); it != h.end(); ++it) {
        const std::string key = it.key();
        const auto& v = it.value();
        if (key == "__metadata__") {
            if (!v.is_object()) bad(name, "__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m)
                if (m.value().is_string()) f.metadata[m.key()] = m.value().get<std::string>();
            continue;
        }
        const std::string where = "tensor '" + key + "': ";
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
            !v.contains("data_offsets"))
            bad(name, where + "needs dtype, shape and data_offsets");
        NdArray a;
        if (!v["dtype"].is_string() || !parseDtype(v["dtype"].get<std::string>(), a.dtype))
            throw InputError(name + ": " + where + "unsupported dtype " + v["dtype"].dump() +
                             " (expected F16, BF16, F32, F64, I32 or I64)");
        const auto& sh = v["shape"];
        const auto& off = v["data_offsets"];
        if (!sh.is_array() || !off.is_array() || off.size() != 2)
            bad(name, where + "shape must be a list and data_offsets a pair");
        std::uint64_t count = 1;
        for (const auto& d : sh) {
            if (!d.is_number_unsigned()) bad(name, where + "shape entries must be non-negative");
            const auto dim = d.get<std::uint64_t>();
            if (dim != 0 && count > (std::uint64_t(1) << 48) / dim)
                bad(name, where + "shape is too large");
            count *= dim;
            a.shape.push_back(static_cast<std::int64_t>(dim));
        }
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            bad(name, where + "data_offsets must be non-negative integers");
        const auto b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
        if (b > e || e > dataSize)
            bad(name, where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                          "] lie outside the " + std::to_string(dataSize) + "-byte data section");
        if (e - b != count * dtypeSize(a.dtype))
            bad(name, where + "data_offsets span " + std::to_string(e - b) + " bytes but shape " +
                          a.shapeString() + " of " + dtypeName(a.dtype) + " needs " +
                          std::to_string(count * dtypeSize(a.dtype)));
        if (withData) a.bytes.assign(base + b, base + e);
        ranges.emplace_back(b, e);
        f.tensors.emplace_back(key, std::move(a));
    }
    // The file's order is its data order (the JSON header is an unordered object).
    std::vector<std::size_t> idx(f.tensors.size());
    for (std::size_t i = 0; i < idx.size(); ++i)
        idx[i] = i;
    std::sort(idx.begin(), idx.end(),
              [&](std::size_t p, std::size_t q) { return ranges[p] < ranges[q]; });
    for (std::size_t i = 1; i < idx.size(); ++i)
        if (ranges[idx[i]].first < ranges[idx[i - 1]].second)
            bad(name, "tensors' data ranges overlap");
    std::vector<std::pair<std::string, NdArray>> ordered;
    ordered.reserve(idx.size());
    for (std::size_t i : idx)
        ordered.push_back(std::move(f.tensors[i]));
    f.tensors = std::move(ordered);
    return f;
}

} // namespace

TensorFile parseSafetensors(const std::uint8_t* data, std::size_t size, const std::string& name) {
    return parse(data, size, name, true);
}

TensorFile readSafetensors(const std::string& path) {
    const auto bytes = readFileBytes(path);
    return parseSafetensors(bytes.data(), bytes.size(), path);
}

TensorFile readSafetensorsHeader(const std::string& path) {
    requireFile(path);
    std::ifstream in(path, std::ios::binary);
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(path, ec);
    if (!in || ec) throw InputError(path + ": cannot be read");
    std::vector<std::uint8_t> head(8);
    in.read(reinterpret_cast<char*>(head.data()), 8);
    const std::uint64_t n =
        headerLength(head.data(), in ? size : std::min<std::uint64_t>(size, 7), path);
    head.resize(8 + n);
    if (!in.read(reinterpret_cast<char*>(head.data() + 8), std::streamsize(n)))
        throw InputError(path + ": cannot be read");
    return parse(head.data(), size, path, false);
}

void writeSafetensors(const std::string& path, const TensorFile& f) {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!f.metadata.empty()) h["__metadata__"] = f.metadata;
    std::uint64_t off = 0;
    for (const auto& [k, a] : f.tensors) {
        const std::uint64_t e = off + a.bytes.size();
        h[k] = {{"dtype", dtypeName(a.dtype)}, {"shape", a.shape}, {"data_offsets", {off, e}}};
        off = e;
    }
    std::string hs = h.dump();
    hs.append((8 - hs.size() % 8) % 8, ' '); // data starts 8-byte aligned
    std::vector<std::uint8_t> out(8);
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<std::uint8_t>((hs.size() >> (8 * i)) & 0xff);
    out.insert(out.end(), hs.begin(), hs.end());
    for (const auto& t : f.tensors)
        out.insert(out.end(), t.second.bytes.begin(), t.second.bytes.end());
    writeFileBytes(path, out);
}

} // namespace qmpp
