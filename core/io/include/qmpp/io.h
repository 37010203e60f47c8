// Array files: .npy (format 1-3) and .safetensors, read with every length and offset checked.
// Every error is an InputError whose message names the file and the problem.
#pragma once

#include "qmpp/array.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace qmpp {

// .npy: float16/32/64, int32/64, either byte order, C order. Fortran order, object, bool,
// complex and other dtypes, bad headers and truncated data are rejected.
NdArray readNpy(const std::string& path);
NdArray parseNpy(const std::uint8_t* data, std::size_t size, const std::string& name);
void writeNpy(const std::string& path, const NdArray& a);
std::vector<std::uint8_t> encodeNpy(const NdArray& a);

// An IDX file of unsigned bytes (MNIST's images [N, H, W] and labels [N]), gzipped or not, as
// I32. maxItems > 0 reads only the first items. Sizes are checked against the data that arrives.
NdArray readIdx(const std::string& path, std::int64_t maxItems = 0);

// .safetensors: tensors in the file's order; F16, BF16, F32, F64, I32, I64.
struct TensorFile {
    std::vector<std::pair<std::string, NdArray>> tensors; // file order
    std::map<std::string, std::string> metadata;
    const NdArray* find(const std::string& key) const;
};
TensorFile readSafetensors(const std::string& path);
// The header alone (names, dtypes, shapes, metadata; the tensors' bytes left empty), checked as
// readSafetensors checks it, without reading the data.
TensorFile readSafetensorsHeader(const std::string& path);
TensorFile parseSafetensors(const std::uint8_t* data, std::size_t size, const std::string& name);
void writeSafetensors(const std::string& path, const TensorFile& f);

// InputError naming the path unless it is a regular file (or a link to one): missing, a
// directory, a named pipe, a device or a socket are refused before anything is opened, so no
// read can block or run without end.
void requireFile(const std::string& path);
// The current UTC time as 2026-01-31T12:00:00Z (reports' "created").
std::string isoTimeNow();
// Reads a whole file; InputError naming the path when it is missing, a directory or unreadable.
std::vector<std::uint8_t> readFileBytes(const std::string& path);
// Writes a whole file; RuntimeFailure when it cannot be written completely (disk full...).
void writeFileBytes(const std::string& path, const std::vector<std::uint8_t>& bytes);

// Temporary files and folders that a signal must not leave behind: SIGINT, SIGTERM or SIGHUP
// remove every registered path, then end the process (128 + signal), once installSignalCleanup
// has run (call it first in main). A signal taken by any thread, ours or a library's, counts.
void registerTemporary(const std::string& path);
void unregisterTemporary(const std::string& path);
void installSignalCleanup();

// Writes a whole file under a temporary name beside it, then renames it into place: the file is
// complete or absent (the old one stays) even when the write fails.
void writeFileAtomic(const std::string& path, const std::vector<std::uint8_t>& bytes);

// One array from an .npy file, or from a .safetensors file: `key` if given, else the only
// tensor, else the tensor named `preferredKey`; otherwise InputError listing the keys.
NdArray loadArray(const std::string& path, const std::string& key = {},
                  const std::string& preferredKey = "tokens");

// The tensor `key` of f (moved out), else its only tensor, else `preferredKey`; otherwise
// InputError naming `path` and listing the keys.
NdArray takeTensor(TensorFile& f, const std::string& key, const std::string& preferredKey,
                   const std::string& path);

// Lower-cased extension with the dot ("/a/b.NPY" -> ".npy").
std::string fileExtension(const std::string& path);

} // namespace qmpp
