// A file that appears under its final name complete or not at all, even when the writing
// process is killed or several threads write the same path at once.
#pragma once
#include <cstdio>
#include <string>

namespace phalanx::io {

// The data goes to an unnamed file (O_TMPFILE) in the target's directory where the kernel and
// filesystem support it: a process killed mid-write leaves nothing behind. Elsewhere it goes
// to `<path>.tmp.<pid>.<n>`, unique per writer even among threads of one process, deleted by
// the destructor, and - for a writer killed with SIGKILL - by the next AtomicFile of the same
// path, which first removes temporaries whose writer process is gone.
//
// commit() syncs the data, names it (a unique `<path>.tmp.<pid>.<n>` for the unnamed file),
// renames it over `path` and syncs the directory. `path` is therefore always either the
// previous file or one complete new one; with concurrent writers the last rename wins.
class AtomicFile {
 public:
  enum class Temp { kAnonymous, kNamed };  // kAnonymous falls back to kNamed where unsupported

  // `what` prefixes errors, e.g. "checkpoint".
  AtomicFile(std::string path, std::string what, Temp temp = Temp::kAnonymous);
  ~AtomicFile();  // without commit() the data is discarded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::FILE* stream() const { return file_; }
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }  // empty while the data is unnamed
  bool anonymous() const { return temp_path_.empty() && !committed_; }

  // "<what> '<path>'" (or the temporary's name once it has one), for error messages.
  std::string describe() const;
  [[noreturn]] void fail_io(const char* action) const;  // IOError from errno

 private:
  std::string path_, what_, temp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Deletes the regular files `<path>.tmp.<pid>` and `<path>.tmp.<pid>.<n>` beside `path` whose
// pid names no live process: what a writer killed mid-write left. Returns how many it deleted.
// A temporary of a live process, this one included, is never touched.
size_t remove_stale_temporaries(const std::string& path);

}  // namespace phalanx::io
