// The output-folder protocol: write into a fresh temporary folder, move into place at the end.
#include "qmpp/error.h"
#include "qmpp/report.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>

namespace fs = std::filesystem;

namespace qmpp {

void OutputDir::checkTarget(const std::string& target, bool force) {
    std::error_code ec;
    const fs::path t(target);
    if (fs::exists(t, ec)) {
        if (!fs::is_directory(t, ec)) throw InputError(target + ": exists and is not a folder");
        if (!force)
            for (const auto& name : outputFileNames())
                if (fs::exists(t / name, ec))
                    throw InputError(target + ": already holds results (" + name +
                                     "); use --force to replace them");
    }
}

OutputDir::OutputDir(const std::string& target, bool force) : m_target(target) {
    checkTarget(target, force);
    std::error_code ec;
    const fs::path t(target);
    fs::path parent = fs::absolute(t, ec).parent_path();
    if (!fs::exists(parent, ec) && !fs::create_directories(parent, ec))
        throw OutputError(parent.string() + ": cannot create the output's parent folder (" +
                          ec.message() + ")");
    std::string templ = (parent / ("." + t.filename().string() + ".qmpp-XXXXXX")).string();
    if (!mkdtemp(templ.data()))
        throw OutputError(target + ": cannot create a temporary folder beside it (" +
                          std::strerror(errno) + ")");
    m_temp = templ;
    // mkdtemp makes the folder private (0700); results get the permissions any new folder gets.
    const mode_t mask = umask(0);
    umask(mask);
    fs::permissions(m_temp, static_cast<fs::perms>(0777 & ~mask), ec);
}

OutputDir::~OutputDir() {
    if (m_committed || m_temp.empty()) return;
    std::error_code ec;
    fs::remove_all(m_temp, ec); // best effort: a failed run leaves the target as it was
}

void OutputDir::commit() {
    std::error_code ec;
    const fs::path t(m_target);
    if (!fs::exists(t, ec)) {
        fs::rename(m_temp, t, ec);
        if (ec)
            throw OutputError(m_target + ": cannot move the results into place (" + ec.message() +
                              ")");
    } else {
        for (const auto& entry : fs::directory_iterator(m_temp)) {
            fs::rename(entry.path(), t / entry.path().filename(), ec);
            if (ec)
                throw OutputError(m_target + ": cannot move " + entry.path().filename().string() +
                                  " into place (" + ec.message() + ")");
        }
        fs::remove(m_temp, ec);
    }
    m_committed = true;
}

} // namespace qmpp
