// Whole-file reads and writes with messages that name the file, and array loading by extension.
#include "qmpp/error.h"
#include "qmpp/io.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <pthread.h>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace qmpp {

std::string isoTimeNow() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string fileExtension(const std::string& path) {
    std::string e = fs::path(path).extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
    return e;
}

void requireFile(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec); // follows links to what they name
    switch (st.type()) {
    case fs::file_type::regular:
        return;
    case fs::file_type::not_found:
        throw InputError(path + ": no such file");
    case fs::file_type::directory:
        throw InputError(path + ": is a directory, not a file");
    case fs::file_type::fifo:
        throw InputError(path + ": is a named pipe (FIFO), not a regular file; qmpp reads only "
                                "regular files, which it can size before reading");
    case fs::file_type::character:
    case fs::file_type::block:
        throw InputError(path + ": is a device, not a regular file");
    case fs::file_type::socket:
        throw InputError(path + ": is a socket, not a regular file");
    default:
        if (ec) throw InputError(path + ": cannot be read (" + ec.message() + ")");
        throw InputError(path + ": is not a regular file");
    }
}

std::vector<std::uint8_t> readFileBytes(const std::string& path) {
    requireFile(path);
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw InputError(path + ": cannot be opened for reading");
    const std::streamoff size = in.tellg();
    if (size < 0) throw InputError(path + ": cannot determine its size");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
        throw InputError(path + ": read failed");
    return bytes;
}

void writeFileBytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw OutputError(path + ": cannot be written (" + std::strerror(errno) + ")");
    const std::size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    const int err = n == bytes.size() ? 0 : errno;
    const bool closed = std::fclose(f) == 0;
    if (n != bytes.size() || !closed)
        throw OutputError(path + ": write failed (" + std::strerror(err ? err : errno) + ")");
}

namespace {
std::mutex g_tempMutex;
std::set<std::string> g_temporaries;
} // namespace

void registerTemporary(const std::string& path) {
    std::lock_guard<std::mutex> lock(g_tempMutex);
    g_temporaries.insert(path);
}
void unregisterTemporary(const std::string& path) {
    std::lock_guard<std::mutex> lock(g_tempMutex);
    g_temporaries.erase(path);
}

namespace {

int g_signalPipe[2] = {-1, -1};

// Any thread may take the signal (libraries start threads of their own before main: OpenBLAS's
// pthread build does as OpenCV loads it), so the handler only passes the signal's number to the
// cleanup thread, through a pipe: write(2) is async-signal-safe.
extern "C" void onTerminatingSignal(int sig) {
    const unsigned char c = static_cast<unsigned char>(sig);
    const ssize_t n = ::write(g_signalPipe[1], &c, 1);
    (void)n;
}

} // namespace

void installSignalCleanup() {
    if (g_signalPipe[0] >= 0 || ::pipe(g_signalPipe) != 0) return;
    std::thread([] {
        unsigned char c = 0;
        ssize_t n = 0;
        while ((n = ::read(g_signalPipe[0], &c, 1)) < 0 && errno == EINTR) {
        }
        if (n != 1) return;
        {
            std::lock_guard<std::mutex> lock(g_tempMutex);
            std::error_code ec;
            for (const auto& p : g_temporaries)
                fs::remove_all(p, ec);
        }
        std::_Exit(128 + int(c)); // what a shell reports for a process a signal ended
    }).detach();
    struct sigaction sa {};
    sa.sa_handler = onTerminatingSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaction(sig, &sa, nullptr);
}

void writeFileAtomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    // a name of its own beside the target (never a user's file), removed on failure or signal
    std::string temp = path + ".qmpp-XXXXXX";
    const int fd = mkstemp(temp.data());
    if (fd < 0) throw OutputError(path + ": cannot be written (" + std::strerror(errno) + ")");
    ::close(fd);
    registerTemporary(temp);
    try {
        writeFileBytes(temp, bytes);
    } catch (...) {
        std::remove(temp.c_str());
        unregisterTemporary(temp);
        throw;
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        std::remove(temp.c_str());
        unregisterTemporary(temp);
        throw OutputError(path + ": cannot be written (" + std::strerror(err) + ")");
    }
    unregisterTemporary(temp);
    // mkstemp makes the file private (0600); the result gets a new file's usual permissions
    const mode_t mask = umask(0);
    umask(mask);
    ::chmod(path.c_str(), 0666 & ~mask);
}

NdArray takeTensor(TensorFile& f, const std::string& key, const std::string& preferredKey,
                   const std::string& path) {
    auto take = [&](const std::string& k) -> NdArray {
        for (auto& t : f.tensors)
            if (t.first == k) return std::move(t.second);
        return {};
    };
    auto keys = [&] {
        std::string list;
        for (const auto& t : f.tensors)
            list += (list.empty() ? "" : ", ") + t.first;
        return list;
    };
    if (!key.empty()) {
        if (!f.find(key))
            throw InputError(path + ": no tensor named '" + key + "' (it holds: " + keys() + ")");
        return take(key);
    }
    if (f.tensors.size() == 1) return std::move(f.tensors[0].second);
    if (f.tensors.empty()) throw InputError(path + ": holds no tensors");
    if (f.find(preferredKey)) return take(preferredKey);
    throw InputError(path + ": holds several tensors (" + keys() + "); choose one with --key");
}

NdArray loadArray(const std::string& path, const std::string& key,
                  const std::string& preferredKey) {
    const std::string ext = fileExtension(path);
    if (ext == ".npy") {
        if (!key.empty())
            throw UsageError(path + ": a key was given but .npy files hold one array");
        return readNpy(path);
    }
    if (ext != ".safetensors")
        throw InputError(path + ": unsupported extension '" + ext +
                         "' for an array (expected .npy or .safetensors)");
    TensorFile f = readSafetensors(path);
    return takeTensor(f, key, preferredKey, path);
}

} // namespace qmpp
