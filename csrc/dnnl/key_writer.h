// A string builder with ostream's `<<` for the few types primitive-cache keys are made of.
// Keys are built on every op call (a LeNet-5 training step builds ~60); std::ostringstream
// took a locale lookup, a dynamic_cast and a heap buffer each time (2% of that step's CPU).
#pragma once
#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

namespace phalanx::dnnl_util {

class KeyWriter {
 public:
  KeyWriter() { s_.reserve(96); }

  KeyWriter& operator<<(char c) {
    s_.push_back(c);
    return *this;
  }
  KeyWriter& operator<<(std::string_view v) {
    s_.append(v);
    return *this;
  }
  KeyWriter& operator<<(const char* v) { return *this << std::string_view(v); }
  KeyWriter& operator<<(const std::string& v) { return *this << std::string_view(v); }
  KeyWriter& operator<<(bool v) { return *this << (v ? '1' : '0'); }
  // Integers and floating point: to_chars (floats in their shortest exact form, so two
  // different values never share a key, which ostream's 6 digits allowed).
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  KeyWriter& operator<<(T v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, r.ptr);
    return *this;
  }

  std::string str() && { return std::move(s_); }
  const std::string& str() const& { return s_; }

 private:
  std::string s_;
};

}  // namespace phalanx::dnnl_util
