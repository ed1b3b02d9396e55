#include "util/error.h"

#include <cstdio>
#include <cstdlib>

namespace whale {

void AbortInvariant(const char* file, int line, const char* condition, const std::string& detail) {
  std::fprintf(stderr, "whale: internal error at %s:%d: %s %s\n", file, line, condition,
               detail.c_str());
  std::abort();
}

}  // namespace whale
