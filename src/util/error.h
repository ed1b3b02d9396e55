// Errors: user and file problems throw whale::Error with full context (file, tensor, field,
// expected vs found); broken invariants abort with file, line and the failed condition.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace whale {

// A problem with the user's input (a file, a flag, a request). The message is one line that
// names what is wrong and what was expected; front ends print it as is.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates any streamable values into one string.
template <typename... Parts>
std::string Cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void Fail(Parts&&... parts) {
  throw Error(Cat(std::forward<Parts>(parts)...));
}

[[noreturn]] void AbortInvariant(const char* file, int line, const char* condition,
                                 const std::string& detail);

}  // namespace whale

// Internal invariant: a failure is a bug in whale, never a consequence of input.
#define WHALE_ASSERT(condition, ...)                                                      \
  do {                                                                                    \
    if (!(condition)) [[unlikely]]                                                        \
      ::whale::AbortInvariant(__FILE__, __LINE__, #condition, ::whale::Cat(__VA_ARGS__)); \
  } while (0)
