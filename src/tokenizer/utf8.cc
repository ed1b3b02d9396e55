#include "tokenizer/utf8.h"

namespace whale::utf8 {

namespace {

// Unicode Table 3-7 (well-formed byte sequences): the allowed range of the second byte depends on
// the lead byte; all later bytes are 80..BF.
bool SecondByteOk(uint8_t lead, uint8_t second) {
  switch (lead) {
    case 0xE0:
      return second >= 0xA0 && second <= 0xBF;
    case 0xED:
      return second >= 0x80 && second <= 0x9F;
    case 0xF0:
      return second >= 0x90 && second <= 0xBF;
    case 0xF4:
      return second >= 0x80 && second <= 0x8F;
    default:
      return second >= 0x80 && second <= 0xBF;
  }
}

// Expected sequence length for a lead byte, or 0 if the byte can never start a sequence.
size_t LeadLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Length of the maximal subpart starting at pos: the longest prefix of a well-formed sequence
// (at least 1). If `complete` is set, the whole sequence was present and valid.
size_t MaximalSubpart(std::string_view s, size_t pos, bool& complete) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = LeadLength(p[pos]);
  complete = false;
  if (n == 0) return 1;
  if (n == 1) {
    complete = true;
    return 1;
  }
  size_t len = 1;
  while (len < n) {
    if (pos + len >= s.size()) return len;
    uint8_t b = p[pos + len];
    bool ok = len == 1 ? SecondByteOk(p[pos], b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return len;
    ++len;
  }
  complete = true;
  return n;
}

}  // namespace

size_t ValidSequenceLength(std::string_view s, size_t pos) {
  bool complete = false;
  size_t len = MaximalSubpart(s, pos, complete);
  return complete ? len : 0;
}

size_t FindInvalid(std::string_view s) {
  size_t pos = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  while (pos < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (pos + 8 <= s.size()) {
      uint64_t word;
      __builtin_memcpy(&word, p + pos, 8);
      if (word & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    if (p[pos] < 0x80) {
      ++pos;
      continue;
    }
    size_t len = ValidSequenceLength(s, pos);
    if (len == 0) return pos;
    pos += len;
  }
  return kValid;
}

void Append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::u32string ToUtf32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(Next(s, pos));
  return out;
}

std::string FromUtf32(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) Append(out, cp);
  return out;
}

std::string DecodeLossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete = false;
    size_t len = MaximalSubpart(bytes, pos, complete);
    if (complete) {
      out.append(bytes.substr(pos, len));
    } else {
      Append(out, kReplacementChar);
    }
    pos += len;
  }
  return out;
}

size_t StablePrefixLength(std::string_view bytes) {
  // Callers pass only the bytes not emitted yet (a few bytes), so walking from the start is cheap.
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete = false;
    size_t len = MaximalSubpart(bytes, pos, complete);
    if (!complete && pos + len == bytes.size() &&
        LeadLength(static_cast<uint8_t>(bytes[pos])) > 1) {
      return pos;  // an incomplete but so far valid sequence at the very end: wait for more bytes
    }
    pos += len;
  }
  return bytes.size();
}

}  // namespace whale::utf8
