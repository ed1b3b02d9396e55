// libFuzzer target for ParseSafetensorsHeader. Every input must either be rejected with a
// one-line whale::Error or parse into a header whose promises hold; anything else (a crash, a
// sanitizer report, another exception type, a broken promise) is a finding.
//
// Each input is tried twice: as a whole file, which exercises the length prefix; and with the
// prefix replaced by (prefix mod (size - 7)), which always lands inside the file, so that
// mutations of the JSON text are not all lost to a length that no longer matches.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tensor/tensor.h"
#include "util/error.h"

namespace {

[[noreturn]] void Finding(const char* what) {
  std::fprintf(stderr, "safetensors_header_fuzz: %s\n", what);
  std::abort();
}

// The guarantees ParseSafetensorsHeader documents for a header it accepts.
void CheckHeader(const whale::SafetensorsHeader& header, std::span<const uint8_t> file) {
  if (header.data_start < 8 || header.data_start > file.size()) Finding("data_start out of file");
  const uint64_t data_size = file.size() - header.data_start;
  uint64_t furthest_end = 0;
  for (size_t i = 0; i < header.entries.size(); ++i) {
    const auto& e = header.entries[i];
    if (e.begin > e.end || e.end > data_size) Finding("span outside the data section");
    if (i > 0 && e.begin < header.entries[i - 1].begin) Finding("entries not sorted by offset");
    if (e.shape.size() > static_cast<size_t>(whale::Tensor::kMaxRank)) Finding("rank too large");
    if (e.begin != e.end) {
      if (e.begin < furthest_end) Finding("overlapping spans accepted");
      furthest_end = e.end;
    }
    // The view the reader would hand out: its strides and byte count must be computable.
    const whale::Tensor view(e.dtype, e.shape, file.data() + header.data_start + e.begin);
    if (view.nbytes() != e.end - e.begin) Finding("byte count disagrees with the span");
  }
}

void ParseOne(std::span<const uint8_t> file) {
  try {
    CheckHeader(whale::ParseSafetensorsHeader(file, "fuzz.safetensors"), file);
  } catch (const whale::Error& e) {
    const std::string message = e.what();
    if (message.rfind("fuzz.safetensors: ", 0) != 0) Finding("message does not name the file");
    if (message.find('\n') != std::string::npos) Finding("message is not one line");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  ParseOne(input);
  if (size >= 8) {
    std::vector<uint8_t> fixed(data, data + size);
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | fixed[static_cast<size_t>(i)];
    length %= static_cast<uint64_t>(size - 7);
    for (int i = 0; i < 8; ++i)
      fixed[static_cast<size_t>(i)] = static_cast<uint8_t>(length >> (8 * i));
    ParseOne(fixed);
  }
  return 0;
}
