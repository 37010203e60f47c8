// libFuzzer: `qmpp report` on a hostile folder must refuse it with InputError and never crash,
// hang or allocate without bound. The input is a folder in a small container: records of
// [1 byte: which file][2 bytes: length, little-endian][that many bytes], for report.json,
// labels.npy, saliency.npy, mask.npy, mass.npy and merged.npy (the corpus's seed is a real run).
#include "qmpp/error.h"
#include "qmpp/htmlreport.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace {

const char* const kFiles[] = {"report.json", "labels.npy", "saliency.npy",
                              "mask.npy",    "mass.npy",   "merged.npy"};
constexpr int kCount = sizeof kFiles / sizeof kFiles[0];

const std::string& folder() {
    static const std::string dir = [] {
        char templ[] = "/tmp/fuzz_report.XXXXXX";
        const char* made = mkdtemp(templ);
        if (!made) std::abort();
        return std::string(made);
    }();
    return dir;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string& dir = folder();
    for (const char* f : kFiles)
        std::remove((dir + "/" + f).c_str());
    for (std::size_t i = 0; i + 3 <= size;) {
        const int which = data[i] % kCount;
        const std::size_t len =
            std::min<std::size_t>(data[i + 1] | (data[i + 2] << 8), size - i - 3);
        if (std::FILE* f = std::fopen((dir + "/" + kFiles[which]).c_str(), "wb")) {
            std::fwrite(data + i + 3, 1, len, f);
            std::fclose(f);
        }
        i += 3 + len;
    }
    try {
        const qmpp::ReportDoc doc = qmpp::loadReport(dir);
        (void)qmpp::renderHtml(doc, true);
    } catch (const qmpp::InputError&) {
    }
    return 0;
}
