#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/file_path.h"

namespace phalanx::io {

namespace {

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string file_name_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Without this a power cut after rename() can lose the new directory entry. Best effort: some
// filesystems (Android's FUSE storage among them) refuse fsync on a directory.
void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Process-wide, so two threads saving the same path never share a temporary name.
std::atomic<uint64_t> temp_counter{0};

std::string next_temp_name(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_counter++);
}

// A fresh `<path>.tmp.<pid>.<n>`. O_EXCL: a name left by a dead process whose pid we reuse is
// skipped, never written into.
int create_named(const std::string& path, std::string& name) {
  for (;;) {
    name = next_temp_name(path);
    int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
}

// An unnamed file in the target's directory, or -1 with errno 0 when the kernel or the
// filesystem has no O_TMPFILE (or /proc, which commit() needs to give it a name).
int create_anonymous(const std::string& path) {
#ifdef O_TMPFILE
  int fd = ::open(directory_of(path).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) errno = 0;
    return -1;
  }
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::access(self.c_str(), F_OK) == 0) return fd;
  ::close(fd);
#else
  (void)path;
#endif
  errno = 0;
  return -1;
}

// `rest` is what follows "<name>.tmp.": a pid, optionally ".<n>". 0 if it is anything else.
pid_t temp_owner(const char* rest) {
  char* end = nullptr;
  errno = 0;
  long pid = std::strtol(rest, &end, 10);
  if (end == rest || errno != 0 || pid <= 0 || *rest < '0' || *rest > '9') return 0;
  if (*end == '.') {
    const char* n = end + 1;
    if (*n == '\0') return 0;
    for (; *n; ++n)
      if (*n < '0' || *n > '9') return 0;
  } else if (*end != '\0') {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

}  // namespace

size_t remove_stale_temporaries(const std::string& path) {
  const std::string dir = directory_of(path), prefix = file_name_of(path) + ".tmp.";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return 0;  // the save itself reports an unusable directory
  size_t removed = 0;
  while (const dirent* e = ::readdir(d.get())) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
    const pid_t owner = temp_owner(e->d_name + prefix.size());
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: alive, not ours).
    if (owner == 0 || owner == ::getpid() || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
    const std::string victim = dir + "/" + e->d_name;
    struct stat st;
    if (::lstat(victim.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(victim.c_str()) == 0)
      ++removed;
  }
  return removed;
}

AtomicFile::AtomicFile(std::string path, std::string what, Temp temp)
    : path_(std::move(path)), what_(std::move(what)) {
  os_path(path_, what_.c_str());
  remove_stale_temporaries(path_);
  int fd = -1;
  if (temp == Temp::kAnonymous) fd = create_anonymous(path_);  // -1 with errno 0: unsupported
  if (temp == Temp::kNamed || (fd < 0 && errno == 0)) fd = create_named(path_, temp_path_);
  if (fd < 0) fail_io("can't create");
  file_ = ::fdopen(fd, "wb");
  if (!file_) {
    const int err = errno;
    ::close(fd);
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    errno = err;
    fail_io("can't open");
  }
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::commit() {
  PHX_CHECK(file_ && !committed_, Error, describe(), ": commit() called twice");
  if (std::fflush(file_) != 0) fail_io("can't write");
  if (::fsync(::fileno(file_)) != 0) fail_io("can't sync");
  if (temp_path_.empty()) {
    // An unnamed file can only be linked to a name that does not exist yet, so it gets a
    // unique temporary one and is then renamed over the target like a named temporary.
    const std::string self = "/proc/self/fd/" + std::to_string(::fileno(file_));
    std::string name;
    for (;;) {
      name = next_temp_name(path_);
      if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) break;
      if (errno != EEXIST) fail_io("can't name");
    }
    temp_path_ = name;
  }
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fclose(f) != 0) fail_io("can't close");
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    throw IOError(err, "can't move " + what_ + " '" + temp_path_ + "' over '" + path_ +
                           "': " + std::strerror(err));
  }
  committed_ = true;
  fsync_directory(directory_of(path_));
}

std::string AtomicFile::describe() const {
  return what_ + " '" + (temp_path_.empty() ? path_ : temp_path_) + "'";
}

void AtomicFile::fail_io(const char* action) const {
  const int err = errno;
  throw IOError(err, std::string(action) + " " + describe() + ": " + std::strerror(err));
}

}  // namespace phalanx::io
