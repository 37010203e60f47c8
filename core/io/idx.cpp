// IDX files (MNIST's format), gzipped or not: read with the header's sizes checked against the
// data that actually arrives, so a lying header cannot cause a large allocation.
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <cstring>

#ifdef QMPP_HAVE_ZLIB
#include <zlib.h>
#else
#include <cstdio>
#endif

namespace qmpp {

namespace {

// Reads bytes in chunks from a (possibly gzipped) file.
class Stream {
  public:
    explicit Stream(const std::string& path) : m_path(path) {
#ifdef QMPP_HAVE_ZLIB
        m_gz = gzopen(path.c_str(), "rb"); // reads plain files too
        if (!m_gz) throw InputError(path + ": cannot open the file");
#else
        if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0)
            throw InputError(path + ": this build has no zlib; gunzip the file first");
        m_f = std::fopen(path.c_str(), "rb");
        if (!m_f) throw InputError(path + ": cannot open the file");
#endif
    }
    ~Stream() {
#ifdef QMPP_HAVE_ZLIB
        gzclose(m_gz);
#else
        std::fclose(m_f);
#endif
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    // Up to n bytes; fewer only at the end of the data.
    std::size_t read(std::uint8_t* dst, std::size_t n) {
        std::size_t got = 0;
        while (got < n) {
            const unsigned want = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 24));
#ifdef QMPP_HAVE_ZLIB
            const int r = gzread(m_gz, dst + got, want);
            if (r < 0) {
                int err = 0;
                const char* msg = gzerror(m_gz, &err);
                throw InputError(m_path + ": corrupt compressed data (" + msg + ")");
            }
#else
            const std::size_t r = std::fread(dst + got, 1, want, m_f);
#endif
            if (r == 0) break;
            got += static_cast<std::size_t>(r);
        }
        return got;
    }

  private:
    std::string m_path;
#ifdef QMPP_HAVE_ZLIB
    gzFile m_gz = nullptr;
#else
    std::FILE* m_f = nullptr;
#endif
};

} // namespace

NdArray readIdx(const std::string& path, std::int64_t maxItems) {
    requireFile(path);
    Stream in(path);
    std::uint8_t head[4];
    if (in.read(head, 4) != 4) throw InputError(path + ": too short for an IDX header");
    if (head[0] != 0 || head[1] != 0)
        throw InputError(path + ": not an IDX file (it does not start with two zero bytes)");
    if (head[2] != 0x08)
        throw InputError(path + ": IDX data type 0x" + std::to_string(head[2]) +
                         " is not unsigned bytes (0x08), the only type images and labels use");
    const int nd = head[3];
    if (nd < 1 || nd > 4)
        throw InputError(path + ": an IDX file of " + std::to_string(nd) + " dimensions (1 to 4)");
    NdArray a;
    a.dtype = DType::I32; // widened below; bytes are kept as uint8 first
    std::vector<std::int64_t> dims;
    std::int64_t per = 1;
    for (int i = 0; i < nd; ++i) {
        std::uint8_t b[4];
        if (in.read(b, 4) != 4) throw InputError(path + ": the IDX header ends early");
        const std::int64_t v = (std::int64_t(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        if (v < 1) throw InputError(path + ": IDX dimension " + std::to_string(i) + " is 0");
        dims.push_back(v);
        if (i > 0) {
            per *= v;
            if (per > (std::int64_t(1) << 26))
                throw InputError(path + ": IDX items of over 64 MiB each");
        }
    }
    const std::int64_t items = maxItems > 0 ? std::min(dims[0], maxItems) : dims[0];
    // a bound on what is decompressed (a small .gz can hold gigabytes); the IDX sets in use are
    // tens of MB, and --limit reads the first items of a larger one
    constexpr std::int64_t kMaxBytes = std::int64_t(256) << 20;
    if (items * per > kMaxBytes)
        throw InputError(path + ": " + std::to_string(items) + " items of " + std::to_string(per) +
                         " bytes are over the 256 MiB an IDX file may hold here; read fewer "
                         "(qmpp eval --limit N)");
    std::vector<std::uint8_t> data;
    std::vector<std::uint8_t> chunk(
        static_cast<std::size_t>(std::min<std::int64_t>(per * 4096, 1 << 24)));
    const std::int64_t want = items * per;
    while (std::int64_t(data.size()) < want) {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::int64_t>(std::int64_t(chunk.size()), want - std::int64_t(data.size())));
        const std::size_t got = in.read(chunk.data(), n);
        data.insert(data.end(), chunk.begin(), chunk.begin() + std::ptrdiff_t(got));
        if (got < n)
            throw InputError(path + ": the data ends after " + std::to_string(data.size()) +
                             " bytes; the header promises " + std::to_string(dims[0] * per) + " (" +
                             std::to_string(dims[0]) + " items)");
    }
    dims[0] = items;
    a.dtype = DType::I32;
    a.shape = dims;
    std::vector<std::int32_t> wide(data.begin(), data.end());
    return NdArray::fromInt32(wide, dims);
}

} // namespace qmpp
