// An image's size from its header, before anything is decoded: a few bytes of header may claim
// 30000 x 30000 pixels, and the decoder would allocate them (2.7 GB) before any limit applies.
// Reads PNG, JPEG, BMP, TIFF and WebP, the formats the tokenizer takes.
#include "qmpp/error.h"
#include "qmpp/inputs.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

namespace qmpp {

namespace {

std::uint32_t be16(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 8 | p[1];
}
std::uint32_t be32(const std::uint8_t* p) {
    return be16(p) << 16 | be16(p + 2);
}
std::uint32_t le16(const std::uint8_t* p) {
    return std::uint32_t(p[1]) << 8 | p[0];
}
std::uint32_t le32(const std::uint8_t* p) {
    return le16(p + 2) << 16 | le16(p);
}

bool jpegSize(const std::vector<std::uint8_t>& b, std::int64_t& w, std::int64_t& h) {
    std::size_t i = 2;
    while (i + 9 < b.size()) {
        if (b[i] != 0xff) { // stray bytes before a marker: libjpeg skips them, and so do we
            ++i;
            continue;
        }
        const std::uint8_t m = b[i + 1];
        if (m == 0xff) { // fill byte
            ++i;
            continue;
        }
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd9)) { // markers without a length
            i += 2;
            continue;
        }
        const std::size_t len = be16(&b[i + 2]);
        const bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
        if (sof) {
            h = be16(&b[i + 5]);
            w = be16(&b[i + 7]);
            return true;
        }
        if (len < 2) return false;
        i += 2 + len;
    }
    return false;
}

bool tiffSize(const std::string& path, const std::vector<std::uint8_t>& b, std::int64_t& w,
              std::int64_t& h) {
    const bool le = b[0] == 'I';
    auto u16 = [&](const std::uint8_t* p) { return le ? le16(p) : be16(p); };
    auto u32 = [&](const std::uint8_t* p) { return le ? le32(p) : be32(p); };
    const std::uint32_t ifd = u32(&b[4]);
    std::ifstream in(path, std::ios::binary);
    std::uint8_t count[2];
    if (!in.seekg(ifd) || !in.read(reinterpret_cast<char*>(count), 2)) return false;
    const std::uint32_t n = u16(count);
    if (n == 0 || n > 4096) return false;
    std::vector<std::uint8_t> e(std::size_t(n) * 12);
    if (!in.read(reinterpret_cast<char*>(e.data()), std::streamsize(e.size()))) return false;
    w = h = -1;
    for (std::uint32_t k = 0; k < n; ++k) {
        const std::uint8_t* t = &e[k * 12];
        const std::uint32_t tag = u16(t), type = u16(t + 2);
        const std::int64_t v = type == 3 ? u16(t + 8) : type == 4 ? u32(t + 8) : -1;
        if (tag == 256) w = v;
        if (tag == 257) h = v;
    }
    return w >= 0 && h >= 0;
}

} // namespace

void requireImageSize(const std::string& path, double maxPixels) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> b(std::size_t(1) << 20);
    in.read(reinterpret_cast<char*>(b.data()), std::streamsize(b.size()));
    b.resize(std::size_t(in.gcount()));
    std::int64_t w = -1, h = -1;
    bool known = true, found = false;
    if (b.size() >= 24 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
        w = be32(&b[16]);
        h = be32(&b[20]);
        found = true;
    } else if (b.size() >= 4 && b[0] == 0xff && b[1] == 0xd8) {
        found = jpegSize(b, w, h);
    } else if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
        w = std::int32_t(le32(&b[18]));
        h = std::int32_t(le32(&b[22]));
        if (h < 0) h = -h; // top-down rows
        found = w >= 0;
    } else if (b.size() >= 8 && ((b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0) ||
                                 (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42))) {
        found = tiffSize(path, b, w, h);
    } else if (b.size() >= 30 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
               std::memcmp(&b[8], "WEBP", 4) == 0) {
        if (std::memcmp(&b[12], "VP8 ", 4) == 0) {
            w = le16(&b[26]) & 0x3fff;
            h = le16(&b[28]) & 0x3fff;
            found = true;
        } else if (std::memcmp(&b[12], "VP8L", 4) == 0) {
            const std::uint32_t bits = le32(&b[21]);
            w = 1 + (bits & 0x3fff);
            h = 1 + ((bits >> 14) & 0x3fff);
            found = true;
        } else if (std::memcmp(&b[12], "VP8X", 4) == 0) {
            w = 1 + (le32(&b[24]) & 0xffffff);
            h = 1 + (le32(&b[27]) & 0xffffff);
            found = true;
        }
    } else {
        known = false;
    }
    if (!known)
        throw InputError(path + ": not a PNG, JPEG, BMP, TIFF or WebP image (by its first bytes)");
    if (!found)
        throw InputError(path + ": the image's header does not say its size (truncated or "
                                "malformed)");
    if (double(w) * double(h) > maxPixels)
        throw InputError(path + ": its header says " + std::to_string(w) + " x " +
                         std::to_string(h) + " pixels; at most " +
                         std::to_string(std::int64_t(maxPixels / 1e6)) +
                         " megapixels are tokenized (refused before decoding)");
}

} // namespace qmpp
