// AtomicFile: temporaries that never outlive their writer, unique names for concurrent writers,
// and paths that would be cut short at a NUL byte.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

using namespace phalanx;
namespace fs = std::filesystem;

namespace {

class AtomicFileTest : public ::testing::TestWithParam<io::AtomicFile::Temp> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phx_atomic_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "out.bin").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string contents() const {
    std::ifstream f(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void write(const std::string& text) const {
    io::AtomicFile f(path_, "test file", GetParam());
    std::fputs(text.c_str(), f.stream());
    f.commit();
  }
  void touch(const std::string& name) const { std::ofstream(dir_ / name) << "stale"; }

  fs::path dir_;
  std::string path_;
};

// The pid of a process that has exited and been reaped: no process has it (until reused).
pid_t dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

TEST_P(AtomicFileTest, UncommittedDataNeverAppears) {
  write("old");
  {
    io::AtomicFile f(path_, "test file", GetParam());
    std::fputs("new", f.stream());
    if (GetParam() == io::AtomicFile::Temp::kNamed) {
      EXPECT_EQ(listing().size(), 2u);
      EXPECT_TRUE(fs::exists(f.temp_path()));
    } else {
      ASSERT_TRUE(f.anonymous()) << "O_TMPFILE unsupported here";
      EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
    }
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(contents(), "old");
}

TEST_P(AtomicFileTest, ConcurrentWritersEachGetTheirOwnTemporary) {
  // Before temporaries were unique per writer, a second writer of the same path reopened and
  // truncated the first one's temporary: the first commit then published a mix of both.
  io::AtomicFile a(path_, "test file", GetParam());
  io::AtomicFile b(path_, "test file", GetParam());
  std::fputs("from a", a.stream());
  std::fputs("from b", b.stream());
  a.commit();
  EXPECT_EQ(contents(), "from a");
  b.commit();
  EXPECT_EQ(contents(), "from b");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
}

TEST_P(AtomicFileTest, ThreadsSavingOnePathAlwaysLeaveOneCompleteFile) {
  constexpr int kThreads = 4, kRounds = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const std::string text(1000 + t, static_cast<char>('a' + t));
      for (int r = 0; r < kRounds; ++r) write(text);
    });
  for (auto& th : threads) th.join();
  const std::string last = contents();
  ASSERT_GE(last.size(), 1000u);
  EXPECT_EQ(last, std::string(last.size(), last[0]));
  EXPECT_EQ(last.size(), 1000u + static_cast<size_t>(last[0] - 'a'));
  EXPECT_EQ(listing(), std::vector<std::string>{"out.bin"});
}

TEST_P(AtomicFileTest, StaleTemporariesOfDeadWritersAreRemovedOnTheNextWrite) {
  const std::string dead = std::to_string(dead_pid()), mine = std::to_string(::getpid());
  touch("out.bin.tmp." + dead);          // left by an older phalanx killed mid-save
  touch("out.bin.tmp." + dead + ".7");   // left by this one's fallback
  touch("out.bin.tmp." + mine + ".99");  // a live writer's (this process): kept
  touch("out.bin.tmp.1.x");              // not a name we make: kept
  touch("other.bin.tmp." + dead);        // another target's: kept
  fs::create_directory(dir_ / ("out.bin.tmp." + dead + ".8"));  // not a regular file: kept
  write("new");
  std::vector<std::string> kept = {"out.bin", "other.bin.tmp." + dead, "out.bin.tmp." + dead + ".8",
                                   "out.bin.tmp.1.x", "out.bin.tmp." + mine + ".99"};
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(listing(), kept);
  EXPECT_EQ(contents(), "new");
}

TEST_P(AtomicFileTest, PathWithNulByteIsRefused) {
  try {
    io::AtomicFile f(path_ + std::string("\0.bak", 5), "test file", GetParam());
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("embedded null byte"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out.bin\\0.bak"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(listing().empty());
}

TEST_P(AtomicFileTest, MissingDirectoryIsAnIOError) {
  try {
    io::AtomicFile f((dir_ / "nowhere" / "x.bin").string(), "test file", GetParam());
    FAIL() << "no error";
  } catch (const IOError& e) {
    EXPECT_EQ(e.errno_value, ENOENT);
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Temp, AtomicFileTest,
                         ::testing::Values(io::AtomicFile::Temp::kAnonymous,
                                           io::AtomicFile::Temp::kNamed),
                         [](const auto& info) {
                           return info.param == io::AtomicFile::Temp::kNamed ? "Named"
                                                                             : "Anonymous";
                         });

}  // namespace
