// The output-folder protocol: write into a fresh temporary folder, move into place at the end.
#include "qmpp/error.h"
#include "qmpp/io.h"
#include "qmpp/report.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>

namespace fs = std::filesystem;

namespace qmpp {

bool insideFolder(const std::string& path, const std::string& dir) {
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
    const fs::path d = fs::weakly_canonical(fs::absolute(dir, ec), ec);
    auto pi = p.begin();
    for (auto di = d.begin(); di != d.end(); ++di, ++pi)
        if (pi == p.end() || *pi != *di) return false;
    return true;
}

void requireInputsOutside(const std::vector<std::string>& inputs, const std::string& out) {
    for (const auto& in : inputs) {
        if (in.empty() || !insideFolder(in, out)) continue;
        const std::string name = fs::path(in).filename().string();
        const auto& ours = outputFileNames();
        if (std::find(ours.begin(), ours.end(), name) != ours.end())
            throw InputError(in + ": lies in the output folder " + out +
                             " and would be replaced by the results; copy it elsewhere first");
    }
}

void requireReportTarget(const std::string& dir, const std::string& out, bool force) {
    if (out.empty()) return; // DIR/report.html: the report's own file
    std::error_code ec;
    const fs::path o = fs::weakly_canonical(fs::absolute(out, ec), ec);
    if (fs::is_directory(o, ec)) throw InputError(out + ": is a folder, not a file");
    const std::string name = o.filename().string();
    const auto& ours = outputFileNames();
    if (insideFolder(out, dir) && o.parent_path() == fs::weakly_canonical(fs::absolute(dir), ec) &&
        name != "report.html" && std::find(ours.begin(), ours.end(), name) != ours.end())
        throw InputError(out + ": is one of the results in " + dir +
                         "; the report is not written "
                         "over them");
    if (fs::exists(o, ec) && !force) throw InputError(out + ": exists; use --force to replace it");
}

void OutputDir::checkTarget(const std::string& target, bool force) {
    std::error_code ec;
    const fs::path t(target);
    if (fs::exists(t, ec)) {
        if (!fs::is_directory(t, ec)) throw InputError(target + ": exists and is not a folder");
        if (!force) {
            for (const auto& name : outputFileNames())
                if (fs::exists(t / name, ec))
                    throw InputError(target + ": already holds results (" + name +
                                     "); use --force to replace them");
            for (const auto& name : outputFolderNames())
                if (fs::is_directory(fs::symlink_status(t / name, ec)))
                    throw InputError(target + ": already holds results (" + name +
                                     "/); use --force to replace them");
        }
    }
}

OutputDir::OutputDir(const std::string& target, bool force) : m_target(target) {
    checkTarget(target, force);
    std::error_code ec;
    const fs::path t(target);
    m_existed = fs::exists(t, ec);
    fs::path parent = fs::absolute(t, ec).parent_path();
    if (!fs::exists(parent, ec) && !fs::create_directories(parent, ec))
        throw OutputError(parent.string() + ": cannot create the output's parent folder (" +
                          ec.message() + ")");
    std::string templ = (parent / ("." + t.filename().string() + ".qmpp-XXXXXX")).string();
    if (!mkdtemp(templ.data()))
        throw OutputError(target + ": cannot create a temporary folder beside it (" +
                          std::strerror(errno) + ")");
    m_temp = templ;
    registerTemporary(m_temp); // a signal removes it (installSignalCleanup)
    // mkdtemp makes the folder private (0700); results get the permissions any new folder gets.
    const mode_t mask = umask(0);
    umask(mask);
    fs::permissions(m_temp, static_cast<fs::perms>(0777 & ~mask), ec);
}

OutputDir::~OutputDir() {
    if (!m_temp.empty()) unregisterTemporary(m_temp);
    if (m_committed || m_temp.empty()) return;
    std::error_code ec;
    fs::remove_all(m_temp, ec); // best effort: a failed run leaves the target as it was
}

void OutputDir::commit() {
    std::error_code ec;
    const fs::path t(m_target);
    if (!m_existed) {
        // A rename that refuses to replace: two runs into one new folder cannot both win.
        if (renameat2(AT_FDCWD, m_temp.c_str(), AT_FDCWD, m_target.c_str(), RENAME_NOREPLACE) !=
            0) {
            const int err = errno;
            throw OutputError(m_target + (err == EEXIST || err == ENOTEMPTY
                                              ? ": was created by someone else while this run "
                                                "worked; its results were not moved there"
                                              : ": cannot move the results into place (" +
                                                    std::string(std::strerror(err)) + ")"));
        }
        m_committed = true;
        return;
    }
    // --force onto a folder of results: everything is checked before anything is replaced, so a
    // refusal leaves the folder as it was
    std::vector<std::string> fresh;
    for (const auto& entry : fs::directory_iterator(m_temp))
        fresh.push_back(entry.path().filename().string());
    const auto& folders = outputFolderNames();
    auto ourFolder = [&](const std::string& name) {
        return std::find(folders.begin(), folders.end(), name) != folders.end();
    };
    for (const auto& name : fresh) {
        const fs::file_status st = fs::symlink_status(t / name, ec);
        const bool replaceable = st.type() == fs::file_type::not_found ||
                                 st.type() == fs::file_type::regular ||
                                 (st.type() == fs::file_type::directory && ourFolder(name) &&
                                  fs::is_directory(fs::path(m_temp) / name));
        if (!replaceable)
            throw OutputError((t / name).string() +
                              ": is not a regular file, so the results cannot replace it; the "
                              "folder was left as it was");
    }
    // our own folders (a real folder, never a link) go whole, new or stale
    for (const auto& name : folders)
        if (fs::symlink_status(t / name, ec).type() == fs::file_type::directory)
            fs::remove_all(t / name, ec);
    // the old results this run does not write again (an image run's PNGs under a token run)
    // would be stale beside the new ones: only qmpp's own output names are removed
    for (const auto& name : outputFileNames())
        if (std::find(fresh.begin(), fresh.end(), name) == fresh.end() &&
            fs::symlink_status(t / name, ec).type() == fs::file_type::regular)
            fs::remove(t / name, ec);
    for (const auto& name : fresh) {
        fs::rename(fs::path(m_temp) / name, t / name, ec);
        if (ec)
            throw OutputError(m_target + ": cannot move " + name + " into place (" + ec.message() +
                              ")");
    }
    fs::remove(m_temp, ec);
    m_committed = true;
}

} // namespace qmpp
