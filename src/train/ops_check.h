// Size checks shared by the training ops: one-line errors naming the op, the span and the
// expected size.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "util/error.h"

namespace whale {

template <typename T>
void CheckSpan(std::string_view op, std::string_view name, std::span<T> s, int64_t expected) {
  if (static_cast<int64_t>(s.size()) != expected)
    Fail(op, ": ", name, " has ", s.size(), " elements; expected ", expected);
}

// The same for a span that may also be empty (an output the caller does not want).
template <typename T>
void CheckOptionalSpan(std::string_view op, std::string_view name, std::span<T> s,
                       int64_t expected) {
  if (!s.empty()) CheckSpan(op, name, s, expected);
}

inline void CheckNonNegative(std::string_view op, std::string_view name, int64_t value) {
  if (value < 0) Fail(op, ": ", name, " = ", value, "; expected >= 0");
}

}  // namespace whale
