// UTF-8: validation, code point iteration and the lossy decoding Hugging Face and Python use
// (every maximal invalid subsequence becomes one U+FFFD).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace whale::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr size_t kValid = static_cast<size_t>(-1);

// Length of the valid UTF-8 sequence starting at s[pos], or 0 if s[pos..] starts with an invalid or
// truncated sequence (overlongs, surrogates and values above U+10FFFF are invalid).
size_t ValidSequenceLength(std::string_view s, size_t pos);

// Byte offset of the first invalid byte, or kValid.
size_t FindInvalid(std::string_view s);

// Decodes the code point at s[pos] and advances pos. `s` must be valid UTF-8 at pos.
inline char32_t Next(std::string_view s, size_t& pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  uint8_t b0 = p[0];
  if (b0 < 0x80) {
    pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    pos += 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    pos += 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  pos += 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// Number of bytes of the UTF-8 sequence whose lead byte is `lead` (1 for continuation bytes).
inline size_t SequenceLength(uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

void Append(std::string& out, char32_t cp);
inline std::string Encode(char32_t cp) {
  std::string out;
  Append(out, cp);
  return out;
}

std::u32string ToUtf32(std::string_view s);  // `s` must be valid UTF-8
std::string FromUtf32(std::u32string_view s);

// Decodes arbitrary bytes: each maximal subpart of an ill-formed sequence (Unicode 3.9, the rule of
// Rust's from_utf8_lossy and Python's errors="replace") becomes one U+FFFD.
std::string DecodeLossy(std::string_view bytes);

// Length of the longest prefix of `bytes` that can be emitted now when more bytes may follow: it
// ends before a trailing sequence that is incomplete but could still become valid. Everything
// before is either valid or definitely invalid (and DecodeLossy turns it into U+FFFD exactly as it
// would in the complete text).
size_t StablePrefixLength(std::string_view bytes);

}  // namespace whale::utf8
