// The one place a path becomes a C string for the OS.
#pragma once
#include <string>

#include "core/error.h"

namespace phalanx::io {

// The path with each NUL byte shown as "\0", for error messages.
inline std::string printable_path(const std::string& path) {
  std::string out;
  for (char c : path) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

// C strings end at the first NUL byte, so "ck.phx\0.bak" would silently become "ck.phx" and a
// save or load would touch a file the caller never named. Such paths are refused, as Python's
// open() refuses them. `what` names the operation in the error ("phalanx.save").
inline const char* os_path(const std::string& path, const char* what) {
  PHX_CHECK(path.find('\0') == std::string::npos, ValueError, what,
            ": embedded null byte in path '", printable_path(path), "'");
  return path.c_str();
}

}  // namespace phalanx::io
