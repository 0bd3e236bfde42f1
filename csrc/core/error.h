// The few kinds of error phalanx raises; the bindings map each to one Python exception.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace phalanx {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ValueError : Error {  // bad shapes, sizes, arguments
  using Error::Error;
};
struct TypeError : Error {  // wrong dtype or kind of argument
  using Error::Error;
};
struct IndexError : Error {  // index or class label out of range
  using Error::Error;
};
struct MemoryError : Error {  // a size no allocation can satisfy, refused before allocating
  using Error::Error;
};
struct TimeoutError : Error {
  using Error::Error;
};
struct IOError : Error {  // a file that can't be opened, read or written; errno says why
  IOError(int errno_value, const std::string& what) : Error(what), errno_value(errno_value) {}
  int errno_value;
};

namespace detail {
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace phalanx

// PHX_CHECK(cond, Kind, parts...) throws phalanx::Kind with the parts streamed together.
#define PHX_CHECK(cond, Kind, ...)                                           \
  do {                                                                       \
    if (!(cond)) throw ::phalanx::Kind(::phalanx::detail::cat(__VA_ARGS__)); \
  } while (0)
